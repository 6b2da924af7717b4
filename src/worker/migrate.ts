// A reload's drain that closes no connection (fdpass, plain HTTP/1.1): each idle keep-alive
// connection is handed back to the primary, which gives it to a ready worker; bytes the client sends
// meanwhile wait in the kernel's socket buffer for the new worker. Idle means what node:http's own
// closeIdleConnections() means: no request begun and no response pending or unflushed. A connection
// with a request in flight goes back once its response has been written.
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

export interface Migration {
  /** Hands back every connection idle now. */
  sweep(): void;
  /** No more hand-backs (a shutdown during the reload's drain: no worker follows). */
  stop(): void;
}

interface ConnectionsList {
  idle(): { socket?: Socket & { _httpMessage?: unknown } }[];
}

/** How often idle connections are looked for besides at each response's end (pipelined responses, a full channel). */
const SWEEP_MS = 50;

/**
 * Starts handing `server`'s idle connections back through `give` (false: not now; it stays and is
 * tried again). Undefined where node:http keeps no connection list (it has, since Node 18.2).
 */
export function migrateIdle(server: Server, sockets: Iterable<Socket>, give: (socket: Socket) => boolean): Migration | undefined {
  const key = Object.getOwnPropertySymbols(server).find((s) => s.description === 'http.server.connections');
  const list = key && ((server as unknown as Record<symbol, ConnectionsList | undefined>)[key]);
  if (!list || typeof list.idle !== 'function') return undefined;
  let stopped = false;
  let soon = false;
  const sweep = (): void => {
    soon = false;
    if (stopped) return;
    for (const { socket: s } of list.idle()) {
      // A response queued for a pipelined request, or bytes Node holds in either direction, stay with this worker.
      if (!s || s.destroyed || s._httpMessage || s.writableLength > 0 || s.readableLength > 0) continue;
      give(s);
    }
  };
  // After the response's 'finish' node:http detaches it from the socket: look in the next turn.
  const afterResponse = (): void => {
    if (soon || stopped) return;
    soon = true;
    setImmediate(sweep);
  };
  const onRequest = (_req: unknown, res: { once(e: 'finish', f: () => void): void }): void => void res.once('finish', afterResponse);
  server.prependListener('request', onRequest);
  for (const s of sockets) (s as Socket & { _httpMessage?: { once?: (e: string, f: () => void) => void } })._httpMessage?.once?.('finish', afterResponse);
  const timer = setInterval(sweep, SWEEP_MS).unref();
  sweep();
  return {
    sweep,
    stop() {
      stopped = true;
      clearInterval(timer);
      server.off('request', onRequest);
    },
  };
}
