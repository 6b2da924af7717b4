// An app server's own `maxConnections`, kept as its accept keeps it (lib/net.js onconnection:
// past it a connection is dropped, and the server emits 'drop'). Under the acceptor the limit is
// part of the worker's capacity, so the primary holds back what is past it: the connection waits
// in the queue (--backlog) or is told busy there, as admission says. One that reaches the worker
// past the limit anyway (lowered since the worker last told the primary, or a strategy where the
// worker accepts) is told busy rather than closed unanswered, counted `worker_full`, and the
// server's 'drop' listeners hear of it as they would under node.
import type { Server, Socket } from 'node:net';

type Counted = { maxConnections?: unknown; _connections?: number };

/**
 * The most connections `server` takes at once: `maxConnections` rounded up (node refuses at
 * `_connections >= maxConnections`), or Infinity where it sets none. 0 sets none here, as on
 * Node 20 (Node 24 refuses every connection at 0).
 */
export function appLimit(server: Server | undefined): number {
  const m = (server as Counted | undefined)?.maxConnections;
  return typeof m === 'number' && m >= 1 ? Math.ceil(m) : Infinity;
}

/** `server` holds as many connections as its `maxConnections` allows. */
export function atAppLimit(server: Server): boolean {
  return ((server as Counted)._connections ?? 0) >= appLimit(server);
}

/** What node's accept tells 'drop' listeners about a connection it refused. */
export function emitDrop(server: Server, socket: Socket): void {
  server.emit('drop', {
    localAddress: socket.localAddress,
    localPort: socket.localPort,
    localFamily: socket.localFamily,
    remoteAddress: socket.remoteAddress,
    remotePort: socket.remotePort,
    remoteFamily: socket.remoteFamily,
  });
}
