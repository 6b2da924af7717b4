// HTTP in a worker: a node:http server that never binds. Connections are fed to it with
// emit('connection'), whether handed over by the primary or accepted by the worker's listener.
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { HttpHandler } from '../handler/load.js';
import type { Logger } from '../log.js';
import type { AcceptorOptions } from '../options.js';
import { countOnce, type Counters } from '../metrics/counters.js';

const CLIENT_ERROR: Record<string, string> = {
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
};

export interface HttpServing {
  server: Server;
  /** Stop keeping connections alive: idle ones close now, busy ones after their response. */
  drain(sockets: Iterable<Socket>): void;
}

export function createHttp(handler: HttpHandler, opts: AcceptorOptions, counters: Counters, log: Logger): HttpServing {
  let draining = false;

  const fail = (err: unknown, res: ServerResponse): void => {
    countOnce(counters, res.socket ?? res, 'handler_error');
    log.error({ err }, 'handler failed');
    // Never a stack trace to the client.
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain', connection: 'close' }).end('internal server error\n');
    else res.destroy();
  };

  const server = createServer(
    {
      headersTimeout: opts.headersTimeout,
      requestTimeout: opts.requestTimeout,
      keepAliveTimeout: opts.keepAliveTimeout,
      // node:http enforces the two timeouts above only when it checks (default: every 30 s).
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.min(opts.headersTimeout, opts.requestTimeout) / 4)),
    },
    (req, res) => {
      if (draining) res.shouldKeepAlive = false;
      try {
        const r = handler(req, res) as Promise<unknown> | undefined;
        if (r && typeof r.then === 'function') r.then(undefined, (err: unknown) => fail(err, res));
      } catch (err) {
        fail(err, res);
      }
    },
  );
  // No server.timeout: --idle-timeout is the worker's sweep (idle.ts), free per request.
  server.timeout = 0;
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const code = err.code ?? '';
    if (code === 'ECONNRESET' || code === 'EPIPE' || !socket.writable) {
      countOnce(counters, socket, 'client_reset');
      socket.destroy();
      return;
    }
    const status = CLIENT_ERROR[code] ?? '400 Bad Request';
    countOnce(counters, socket, code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'timeout' : 'bad_request');
    log.debug({ code, status }, 'client error');
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    socket.destroySoon();
  });
  // node:http tracks connections (headersTimeout, requestTimeout, closeIdleConnections) only
  // from 'listening' on; this server never binds, so start that tracking by hand.
  server.emit('listening');

  return {
    server,
    drain(sockets) {
      draining = true;
      server.closeIdleConnections();
      for (const s of sockets) {
        const res = (s as Socket & { _httpMessage?: ServerResponse })._httpMessage;
        if (res && !res.headersSent) res.shouldKeepAlive = false;
      }
    },
  };
}
