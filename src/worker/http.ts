// HTTP in a worker: a node:http server that never binds. Connections are fed to it with
// emit('connection'), whether handed over by the primary or accepted by the worker's listener.
// Over TLS it is node:https, or node:http2's secure server with HTTP/1.1 allowed (ALPN picks):
// the same (req, res) handler serves both, and the same timeouts apply to HTTP/1.1.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createSecureServer, type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from 'node:http2';
import type { Socket } from 'node:net';
import { parentOf, socketErrorReason, tlsSocketOf, type Credentials } from './tls.js';
import type { HttpHandler, UpgradeHandler } from '../handler/load.js';
import type { Logger } from '../log.js';
import type { AcceptorOptions } from '../options.js';
import { countOnce, type Counters } from '../metrics/counters.js';
import type { Migration } from './migrate.js';

const CLIENT_ERROR: Record<string, string> = {
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
};

export interface HttpServing {
  /** Takes connections by emit('connection'); a tls.Server when `credentials` were given. */
  server: Server;
  /**
   * Stop keeping connections alive: busy ones close after their response, idle ones after the
   * grace. With a migration (a reload, fdpass) keep-alive stays on: idle connections go back to the
   * primary instead, and only those that could not are closed after the grace.
   */
  drain(sockets: Iterable<Socket>, migration?: Migration): void;
}

type Request = IncomingMessage | Http2ServerRequest;
type Response = ServerResponse | Http2ServerResponse;

export function createHttp(handler: HttpHandler, opts: AcceptorOptions, counters: Counters, log: Logger, credentials: Credentials | undefined, upgrade: UpgradeHandler | undefined): HttpServing {
  let draining = false;

  const fail = (err: unknown, req: Request, res: Response): void => {
    countOnce(counters, res.socket ?? res, 'handler_error');
    log.error({ err }, 'handler failed');
    // Never a stack trace to the client. HTTP/2 has no Connection header (it closes the stream).
    if (!res.headersSent) (res as ServerResponse).writeHead(500, req.httpVersionMajor === 2 ? { 'content-type': 'text/plain' } : { 'content-type': 'text/plain', connection: 'close' }).end('internal server error\n');
    else res.destroy();
  };

  const listener = (req: Request, res: Response): void => {
    if (draining) (res as ServerResponse).shouldKeepAlive = false;
    try {
      const r = handler(req as IncomingMessage, res as ServerResponse) as Promise<unknown> | undefined;
      if (r && typeof r.then === 'function') r.then(undefined, (err: unknown) => fail(err, req, res));
    } catch (err) {
      fail(err, req, res);
    }
  };
  const timeouts = {
    headersTimeout: opts.headersTimeout,
    requestTimeout: opts.requestTimeout,
    keepAliveTimeout: opts.keepAliveTimeout,
    // node:http enforces the two timeouts above only when it checks (default: every 30 s).
    // Stryker disable next-line MethodExpression: a 100 ms ceiling instead of a floor checks more often, equivalent; the larger timeout instead of the smaller checks every 500 ms in the test's slowloris case, inside the bound a test can hold on a loaded machine
    connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.min(opts.headersTimeout, opts.requestTimeout) / 4)),
  };
  // Open HTTP/2 sessions, each with the connection it runs on, read while the session has one:
  // a client's reset is reported once the session is destroyed and its socket gone.
  const sessions = new Map<Http2Session, object>();
  let server: Server;
  if (!credentials) server = createServer(timeouts, listener);
  else if (!opts.http2) server = createHttpsServer({ ...timeouts, cert: credentials.cert, key: credentials.key, ALPNProtocols: ['http/1.1'] }, listener) as unknown as Server;
  else {
    const h2 = createSecureServer({ cert: credentials.cert, key: credentials.key, allowHTTP1: true }, listener);
    // Its HTTP/1.1 side reads these from the server object, as node:http does.
    Object.assign(h2, timeouts);
    h2.on('session', (s: Http2Session) => {
      sessions.set(s, parentOf(s.socket) ?? s);
      // Stryker disable next-line ArrowFunction,StringLiteral: forgetting a closed session saves memory; closing it again at a drain does nothing
      s.once('close', () => sessions.delete(s));
      if (draining) s.close();
    });
    // A client that rejects the certificate sends its alert after the server's side of the
    // handshake is done; under HTTP/2 it surfaces here. Other session errors: the client's (a reset).
    h2.on('sessionError', (err: NodeJS.ErrnoException, session: Http2Session) => {
      countOnce(counters, sessions.get(session) ?? session, socketErrorReason(err));
    });
    server = h2 as unknown as Server;
  }
  // No server.timeout: --idle-timeout is the worker's sweep (idle.ts), free per request.
  server.timeout = 0;
  countClientErrors(server, counters, log);
  if (upgrade) {
    // Its own 'upgrade' listener: node:http then hands the socket over and stops parsing it, so no
    // request timeout ever writes a 408 into a WebSocket stream.
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      try {
        const r = upgrade(req, socket, head) as Promise<unknown> | undefined;
        if (r && typeof r.then === 'function') r.then(undefined, (err: unknown) => upgradeFailed(err, socket));
      } catch (err) {
        upgradeFailed(err, socket);
      }
    });
  }
  const upgradeFailed = (err: unknown, socket: Socket): void => {
    countOnce(counters, socket, 'handler_error');
    log.error({ err }, 'upgrade handler failed');
    socket.destroy();
  };
  // node:http tracks connections (headersTimeout, requestTimeout, closeIdleConnections) only
  // from 'listening' on; this server never binds, so start that tracking by hand.
  server.emit('listening');

  return {
    server,
    drain(sockets, migration) {
      if (migration) return closeIdleAfterGrace(server, migration.sweep);
      draining = true;
      closeIdleAfterGrace(server);
      // HTTP/2: GOAWAY; streams in flight finish, then the session closes.
      for (const s of sessions.keys()) s.close();
      endKeepAlive(sockets);
    },
  };
}

/**
 * Counts malformed requests and timeouts (node:http's 'clientError') and, where `answers()`, answers
 * them as node:http would: 400, 408 or 431, then closes.
 */
export function countClientErrors(server: Server, counters: Counters, log: Logger, answers: () => boolean = () => true): void {
  // First, so that a socket an app's own listener ends is still counted under its cause.
  server.prependListener('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // Stryker disable next-line StringLiteral: equivalent, an error without a code is a 400 either way
    const code = err.code ?? '';
    // Over TLS a failed handshake reaches here too (node:http2 passes its socket errors on).
    if (socketErrorReason(err) === 'tls_handshake') {
      countOnce(counters, socket, 'tls_handshake');
      if (answers()) socket.destroy();
      return;
    }
    // A socket error (ECONNRESET, EPIPE, …) has destroyed the socket before this runs; a parse
    // error or a timeout has not. (Those codes were tested here too, but never decided anything:
    // the mutation run showed it, and the check is gone.)
    if (!socket.writable) {
      countOnce(counters, socket, 'client_reset');
      if (answers()) socket.destroy();
      return;
    }
    countOnce(counters, socket, code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'timeout' : 'bad_request');
    // An app that listens for 'clientError' answers it itself.
    if (!answers()) return;
    const status = CLIENT_ERROR[code] ?? '400 Bad Request';
    // Stryker disable next-line ObjectLiteral,StringLiteral: a debug line no test reads
    log.debug({ code, status }, 'client error');
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    socket.destroySoon();
  });
}

/**
 * At a drain an idle keep-alive connection is not closed at once: its client may have sent its next
 * request already, and would see the connection reset under it. Each such request is answered with
 * `Connection: close` instead (the drain sets that), so a client that keeps sending moves to a new
 * connection without a failure. Connections still idle after DRAIN_GRACE_MS (or the server's
 * keep-alive timeout, if shorter) are closed then: a request sent at that very moment is the race
 * that remains. node:http's close() (an app's, in its SIGTERM listener) closes idle connections at
 * once: that part waits for the grace too. (node:http2's server has no idle connections to close.)
 */
const DRAIN_GRACE_MS = 1000;

export function closeIdleAfterGrace(server: { closeIdleConnections?: () => void; keepAliveTimeout?: number }, moveIdle?: () => void): void {
  if (typeof server.closeIdleConnections !== 'function') return;
  // Migrating, idle connections are handed back instead, the app's own close() included.
  server.closeIdleConnections = moveIdle ?? (() => {});
  setTimeout(() => {
    moveIdle?.();
    // node:http's own again, from its prototype: what is still idle could not be handed back.
    Reflect.deleteProperty(server, 'closeIdleConnections');
    server.closeIdleConnections?.();
  }, Math.min(DRAIN_GRACE_MS, server.keepAliveTimeout ?? DRAIN_GRACE_MS)).unref();
}

/** Responses in flight on `sockets` are the last on their connection (Connection: close). */
export function endKeepAlive(sockets: Iterable<Socket>): void {
  for (const s of sockets) {
    const res = ((tlsSocketOf(s) ?? s) as Socket & { _httpMessage?: ServerResponse })._httpMessage;
    if (res && !res.headersSent) res.shouldKeepAlive = false;
  }
}

/**
 * Connections among `sockets` that node:http upgraded (WebSocket) or tunnelled (CONNECT): it
 * frees a connection's parser once it hands it over, and keeps one on every other HTTP/1
 * connection from the first byte on. Counted at scrape time, so the request path pays nothing.
 */
export function countUpgraded(sockets: Iterable<Socket>): number {
  let n = 0;
  for (const s of sockets) if (((tlsSocketOf(s) ?? s) as Socket & { parser?: unknown }).parser === null) n++;
  return n;
}
