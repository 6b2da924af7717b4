// An app that starts its own server (`server.listen(process.env.PORT)`, Express's and Koa's
// `app.listen`, Fastify's `listen({ port })`, Hono's `serve()`, ws and socket.io on their own
// port) runs in a worker unchanged: its listen() does not bind. The server is marked listening on
// the acceptor's endpoint (its `listening` event and callback fire, `address()` reports the
// endpoint) and is given the acceptor's connections, after admission. Left alone, node:cluster
// would bind that listen in the primary and share it, behind the acceptor's admission and metrics.
import net, { type Server } from 'node:net';

export interface Endpoint {
  address: string;
  port: number;
}

/** A listen the acceptor cannot serve (another port, a Unix socket): the start fails with this. */
export type Refusal = (message: string) => void;

type ListenArgs = [options: net.ListenOptions & { fd?: number; handle?: unknown; path?: string }, cb: (() => void) | null];
const normalizeArgs = (net as unknown as { _normalizeArgs: (args: unknown[]) => ListenArgs })._normalizeArgs;

const WILDCARDS = new Set([undefined, null, '', '::', '0.0.0.0', '::0']);

/**
 * Two listens on one port bind both only on two specific addresses (127.0.0.1 and ::1, as
 * Fastify does for `localhost`); a wildcard covers every address, as the kernel sees it.
 */
const overlaps = (a: string | undefined, b: string | undefined): boolean => WILDCARDS.has(a) || WILDCARDS.has(b) || a === b;

function where(o: ListenArgs[0]): string {
  if (o.path !== undefined) return `the Unix socket ${o.path}`;
  if (o.fd !== undefined) return `descriptor ${o.fd}`;
  if (o.handle !== undefined) return 'a handle';
  return `port ${String(o.port)}`;
}

export class ListenInterceptor {
  /** The first server that listened on the acceptor's port: it is given the connections. */
  server: Server | undefined;
  /** The host the app asked for (informational: the acceptor's --host decides). */
  host: string | undefined;
  private readonly own = new WeakSet<Server>();
  private readonly waiting = new Set<(s: Server) => void>();
  private readonly original = net.Server.prototype.listen;

  constructor(
    private readonly endpoint: Endpoint,
    private readonly refuse: Refusal,
    private readonly onSecondary: (host: string | undefined) => void,
  ) {}

  /** From now on, every listen() in this process but the acceptor's own is intercepted. */
  install(): void {
    const self = this;
    net.Server.prototype.listen = function (this: Server, ...args: unknown[]): Server {
      if (self.own.has(this)) return self.original.apply(this, args as never) as Server;
      return self.intercept(this, args);
    } as typeof net.Server.prototype.listen;
  }

  /** The acceptor's own listen (the worker's accept of a shared socket): binds for real. */
  listenOwn(server: Server, options: net.ListenOptions, cb: () => void): void {
    this.own.add(server);
    server.listen(options, cb);
  }

  /** Resolves with the app's server once it has listened; never rejects. */
  listened(): Promise<Server> {
    if (this.server) return Promise.resolve(this.server);
    return new Promise((resolve) => this.waiting.add(resolve));
  }

  private intercept(server: Server, args: unknown[]): Server {
    const [o, cb] = normalizeArgs(args);
    const family = this.endpoint.address.includes(':') ? 'IPv6' : 'IPv4';
    const at = family === 'IPv6' ? `[${this.endpoint.address}]:${this.endpoint.port}` : `${this.endpoint.address}:${this.endpoint.port}`;
    if (o.path !== undefined || o.fd !== undefined || o.handle !== undefined) {
      this.refuse(`the app listens on ${where(o)}, but the acceptor serves TCP ${at}: listen on process.env.PORT`);
      return server;
    }
    // listen() and listen(0) ask for any port: the acceptor's is one.
    const port = o.port === undefined || o.port === null || (o.port as unknown) === '' ? 0 : Number(o.port);
    if (port !== 0 && port !== this.endpoint.port) {
      this.refuse(`the app listens on port ${o.port}, but the acceptor serves port ${this.endpoint.port}: listen on process.env.PORT (the acceptor sets it), or start the acceptor with --port ${o.port}`);
      return server;
    }
    // As Node: a server listens once.
    if ((server as unknown as { _handle: unknown })._handle) throw Object.assign(new Error('Listen method has been called more than once without closing.'), { code: 'ERR_SERVER_ALREADY_LISTEN' });
    if (typeof cb === 'function') server.once('listening', cb);
    if (this.server && this.server !== server) {
      if (overlaps(o.host, this.host)) {
        // As the kernel would answer a second bind of the same address and port.
        const err = Object.assign(new Error(`listen EADDRINUSE: address already in use ${at}`), { code: 'EADDRINUSE', errno: -98, syscall: 'listen', address: this.endpoint.address, port: this.endpoint.port });
        process.nextTick(() => server.emit('error', err));
        return server;
      }
      // Another address of the same host name (Fastify listens on 127.0.0.1 and ::1 for
      // `localhost`): it listens, and the first server serves every connection.
      this.onSecondary(o.host);
    } else {
      this.server = server;
      this.host = o.host;
    }
    const endpoint = this.endpoint;
    const handle = {
      close() {},
      getsockname(out: Record<string, unknown>) {
        out.address = endpoint.address;
        out.family = family;
        out.port = endpoint.port;
        return 0;
      },
      ref() {},
      unref() {},
    };
    // net.Server reads these: `listening` is `_handle && _connectionKey`, address() asks the
    // handle, close() closes it and emits 'close' once the connections given to it have ended.
    Object.assign(server, { _handle: handle, _connectionKey: `${family === 'IPv6' ? 6 : 4}:${endpoint.address}:${endpoint.port}` });
    process.nextTick(() => {
      if ((server as unknown as { _handle: unknown })._handle === handle) server.emit('listening');
    });
    if (this.server === server) {
      for (const w of this.waiting) w(server);
      this.waiting.clear();
    }
    return server;
  }
}

/**
 * Gives `server` a connection as net.Server's own accept does: counted in its `_connections` (so
 * its close() waits for it and getConnections() sees it) and linked back to it.
 */
export function feed(server: Server, socket: net.Socket): void {
  (server as unknown as { _connections: number })._connections++;
  Object.assign(socket, { server, _server: server });
  server.emit('connection', socket);
}

type AcceptOptions = { allowHalfOpen?: boolean; noDelay?: boolean; keepAlive?: boolean; keepAliveInitialDelay?: number; pauseOnConnect?: boolean; highWaterMark?: number };

/** The stream internals net.Socket's constructor sets from `pauseOnCreate` and the high-water marks. */
type SocketInternals = {
  _handle: { reading: boolean; readStop(): number } | null;
  _readableState: { reading: boolean; flowing: boolean | null; highWaterMark: number };
  _writableState: { highWaterMark: number };
};

/**
 * Gives a connection handed to this worker what `server`'s own accept would give it from the
 * server's options (lib/net.js onconnection): no Nagle delay where it asks (node:http and https do
 * by default: without it a response written in two parts waits for the client's delayed ACK,
 * 40 ms), keep-alive probes, a half-open socket (a client's FIN does not end the reply), its stream
 * buffer size (`highWaterMark`), and a socket that reads nothing until the app resumes it
 * (`pauseOnConnect`: an app that connects upstream first, or hands the socket to another process,
 * finds every byte still in the kernel). The last three only where the server owns the socket
 * (`direct`): not where a TLS server of the acceptor's stands in front and reads it.
 */
export function adopt(server: Server, socket: net.Socket, direct: boolean): void {
  const o = server as unknown as AcceptOptions;
  if (o.noDelay) socket.setNoDelay(true);
  // The server keeps the delay in seconds, as its accept passes it to the handle.
  if (o.keepAlive) socket.setKeepAlive(true, (o.keepAliveInitialDelay ?? 0) * 1000);
  if (!direct) return;
  if (o.allowHalfOpen) socket.allowHalfOpen = true;
  const s = socket as unknown as SocketInternals;
  // Every server has one (node's default unless set): the socket was made with that default.
  if (o.highWaterMark !== undefined && o.highWaterMark !== s._readableState.highWaterMark) {
    s._readableState.highWaterMark = o.highWaterMark;
    s._writableState.highWaterMark = o.highWaterMark;
  }
  if (o.pauseOnConnect && s._handle) {
    // As the constructor's pauseOnCreate. The socket was made reading, in this same tick, so
    // nothing has been read yet; its pending read(0) is undone too, or resume() would never
    // start the handle again.
    s._handle.reading = false;
    s._handle.readStop();
    s._readableState.reading = false;
    s._readableState.flowing = false;
  }
}
