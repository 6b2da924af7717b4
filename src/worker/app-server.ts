// Forms 1 and 2: the app's own server (node:http, https, http2, net, or what a framework made)
// takes the connections this worker is given, as if it had accepted them itself. Its own
// request listeners, timeouts and 'upgrade' handling apply; the acceptor adds accounting
// (malformed requests, upgraded connections) and, with --tls-cert, terminates TLS in front of it.
import { Server as HttpServer } from 'node:http';
import { Server as HttpsServer } from 'node:https';
import { createServer as createTlsServer, Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Server, Socket } from 'node:net';
import { AppError } from '../handler/load.js';
import { feed } from '../handler/listen.js';
import type { Logger } from '../log.js';
import type { Protocol } from '../options.js';
import type { Counters } from '../metrics/counters.js';
import type { Credentials } from './tls.js';
import { closeIdleAfterGrace, countClientErrors, endKeepAlive } from './http.js';
import type { Migration } from './migrate.js';

export interface AppServing {
  /** Gives the app's server a connection: the worker's own, or (TLS) the decrypted one. */
  take(socket: Socket): void;
  /** With --tls-cert: the TLS server whose decrypted connections go to the app's server. */
  tlsServer: TlsServer | undefined;
  /**
   * Stops keeping connections alive, and holds idle ones open for the drain's grace (http.ts), even
   * through the app's own `server.close()`. Called before the app's shutdown listeners run.
   */
  drain(sockets: Iterable<Socket>, migration?: Migration): void;
  /** Closes the app's server (its 'close' listeners run once its connections end), unless the app's own shutdown listeners were called to do it. */
  close(appOwnsExit: boolean): void;
}

/** node:http's and node:https's servers, and node:http2's (which has updateSettings). */
const speaksHttp = (s: Server): boolean => s instanceof HttpServer || s instanceof HttpsServer || typeof (s as { updateSettings?: unknown }).updateSettings === 'function';

export function serveAppServer(server: Server, protocol: Protocol, counters: Counters, log: Logger, credentials: Credentials | undefined): AppServing {
  if (credentials && server instanceof TlsServer) {
    throw new AppError(`the app serves TLS itself (${server.constructor.name}) while --tls-cert is given: let the acceptor terminate TLS in front of a plain HTTP server, or drop --tls-cert and --tls-key`);
  }
  const http = speaksHttp(server);
  if (http !== (protocol === 'http')) {
    log.warn({ protocol, appServer: server.constructor.name }, http ? "the app's server speaks HTTP but --protocol is tcp: refused clients get the tcp busy line, not a 503" : "the app's server is not an HTTP server but --protocol is http: refused clients get an HTTP 503; use --protocol tcp");
  }
  // Counted always; answered here only where the app has no 'clientError' listener of its own.
  if (http) countClientErrors(server as unknown as HttpServer, counters, log, () => server.listenerCount('clientError') === 1);
  // HTTP/1.1 only by ALPN: a plain node:http server (Express, Koa, Fastify) does not speak h2.
  const tlsServer = credentials ? createTlsServer({ cert: credentials.cert, key: credentials.key, ...(http ? { ALPNProtocols: ['http/1.1'] } : {}) }, (s: TLSSocket) => feed(server, s)) : undefined;
  return {
    take: (s) => feed(server, s),
    tlsServer,
    drain(sockets, migration) {
      // Migrating (http.ts), keep-alive stays on and idle connections are handed back instead.
      if (!migration) endKeepAlive(sockets);
      if (!http) return;
      // From now on a request that arrives on a kept-alive connection is its last. (Added only now:
      // the request path pays nothing for it before.)
      if (!migration) {
        server.prependListener('request', (_req: unknown, res: { shouldKeepAlive?: boolean }) => {
          res.shouldKeepAlive = false;
        });
      }
      // Idle connections close after the grace, even through the app's own server.close().
      closeIdleAfterGrace(server as HttpServer, migration?.sweep);
    },
    close(appOwnsExit) {
      if (!appOwnsExit && server.listening) server.close();
    },
  };
}
