// A worker process: loads the user's handler, serves the connections it is given (handoff) or
// accepts itself (round-robin / shared / reuseport), reports closes and heartbeats, drains.
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createLogger } from '../log.js';
import { AppError, loadApp, loadError, type App, type TcpHandler } from '../handler/load.js';
import { ListenInterceptor, adopt } from '../handler/listen.js';
import { divertShutdownSignals } from '../handler/signals.js';
import { fetchListener } from '../handler/fetch.js';
import { serveAppServer, type AppServing } from './app-server.js';
import { appLimit, atAppLimit, blocked, emitDrop } from './app-accept.js';
import { busyFor, makeRefuse } from '../admission/busy.js';
import { Counters, countOnce } from '../metrics/counters.js';
import { snapshot } from '../metrics/totals.js';
import { workerRegistry } from '../metrics/worker.js';
import { clock } from '../clock.js';
import { asSocket, type Conn } from '../dispatch/accept.js';
import { countUpgraded, createHttp, type HttpServing } from './http.js';
import { sweepIdle } from './idle.js';
import { migrateIdle, type Migration } from './migrate.js';
import { Server as HttpServer } from 'node:http';
import { HEARTBEAT_MS, type FromWorker, type ToWorker, type WorkerConfig } from './protocol.js';
import { receiveHandoffs, type HandoffChannel } from './fdpass.js';
import { DescriptorBudget } from './descriptors.js';
import { nofile } from '../nofile.js';
import { closesByKey, workersKeepKeys } from '../options.js';
import { loadCredentials, socketErrorReason, terminateTls, type Credentials } from './tls.js';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';

const config = JSON.parse(process.env.ACCEPTOR_WORKER_CONFIG ?? 'null') as WorkerConfig;
delete process.env.ACCEPTOR_WORKER_CONFIG; // the handler's own child processes need not see it
const { options: opts, slot } = config;
const log = createLogger(slot, opts.logLevel, opts.logFormat);
const counters = new Counters();
// Always with a callback: without one, a send that races the primary's death (EPIPE) would be
// an uncaught 'error'. The worker exits on 'disconnect' then anyway.
const ignore = (): void => {};
const send = (msg: FromWorker, cb: () => void = ignore): void => {
  // Stryker disable next-line ConditionalExpression: equivalent, on a closed channel send() passes its error to the callback
  if (process.connected) process.send!(msg, undefined, undefined, cb);
};

/** Fails the start: the primary decides whether to give up or back off (see 'fail'). */
async function failStart(error: string, fields: object): Promise<never> {
  log.fatal(fields, error);
  // The primary decides: fail the start, or back off and retry once the app has run healthy.
  send({ acceptor: 'fail', error }, () => process.exit(1));
  setTimeout(() => process.exit(1), 1000);
  return new Promise(() => {});
}

// From here on, signals sent to the whole process group are ignored (the primary drains the
// workers), and the app's own listeners for them are kept for the drain.
const shutdown = divertShutdownSignals();

// Read by every new worker: a reload picks up certificate files rotated in place. One that no
// longer loads fails this worker's start, and the reload keeps the old workers serving.
let credentials: Credentials | undefined;
try {
  credentials = loadCredentials(opts);
} catch (err) {
  await failStart((err as Error).message, { err });
}

let refused = false;
// The app's listen() calls, from its import on: served on the acceptor's endpoint, never bound.
const intercept = opts.handler === undefined ? undefined : new ListenInterceptor(
  { address: config.address, port: config.port },
  (error) => {
    refused = true;
    void failStart(`cannot serve app ${opts.handler}: ${error}`, { handler: opts.handler });
  },
  (host) => log.info({ host }, "a second server of the app listens on the acceptor's port for another address; the first one is given every connection"),
);
intercept?.install();

let app: App;
try {
  app = await loadApp(opts.handler, opts.protocol, intercept, opts.startTimeout);
} catch (err) {
  const why = err instanceof AppError ? err.message : loadError(opts.handler!, err);
  app = await failStart(`cannot load handler ${opts.handler}: ${why}`, { handler: opts.handler, err });
}
// A listen the acceptor cannot serve has failed the start: the process is on its way out.
if (refused) await new Promise(() => {});
// An exported server listens as a started one does (its `listening` event, address()).
if (app.form === 'server' && !app.server.listening) app.server.listen();
if (opts.handler !== undefined) log.info({ handler: opts.handler, form: app.form === 'server' ? `server (${app.via === 'listen' ? 'listen()' : 'exported'})` : app.form, appHost: intercept?.host }, 'app loaded');

const sockets = new Set<Socket>();
let draining = false;
/** The app's shutdown listeners ran at the drain: it ends the process when it is done. */
let appOwnsExit = false;
let closedUnreported = 0;
let handled = 0;
// With --no-metrics there is no registry at all: no collectors, no histogram on the hand-off path.
const metrics = opts.metrics ? workerRegistry(slot, () => sockets.size, credentials !== undefined, () => countUpgraded(sockets)) : undefined;
/** This worker's counters, for the primary to keep (metrics/totals.ts): none with --no-metrics. */
const counts = (): number[] | undefined => (opts.metrics ? snapshot(counters, handled) : undefined);
const handoff = opts.strategy === 'handoff';

sweepIdle(sockets, opts.idleTimeout, (socket) => {
  countOnce(counters, socket, 'timeout');
  socket.destroy();
});

const handlerFailed = (err: unknown): void => {
  counters.errors.handler_error++;
  log.error({ err }, 'handler failed');
};
let appServer: AppServing | undefined;
let http: HttpServing | undefined;
try {
  if (app.form === 'server') appServer = serveAppServer(app.server, opts.protocol, counters, log, credentials);
  else if (app.form === 'fetch') {
    if (opts.protocol !== 'http') throw new AppError('the app exports fetch(request), which serves HTTP, but --protocol is tcp');
    http = createHttp(fetchListener(app.fetch, handlerFailed), opts, counters, log, credentials, app.upgrade);
  } else if (opts.protocol === 'http') http = createHttp(app.listener as Parameters<typeof createHttp>[0], opts, counters, log, credentials, app.upgrade);
} catch (err) {
  await failStart(`cannot serve app ${opts.handler}: ${(err as Error).message}`, { handler: opts.handler });
}
const tcpHandler = app.form === 'listener' ? (app.listener as TcpHandler) : undefined;
// TLS: connections go to the TLS server, and what it decrypts to the handler or the app's server.
const tlsServer = appServer?.tlsServer ?? (credentials && !http ? createTlsServer({ cert: credentials.cert, key: credentials.key }, (s) => serveTcp(s)) : undefined);
const tls = credentials ? terminateTls((http?.server ?? tlsServer) as TlsServer, counters, metrics?.handshake, log) : undefined;

function serveTcp(socket: Socket): void {
  // Counted here, and never an uncaught exception when the handler attaches no listener of its own.
  socket.on('error', (err: NodeJS.ErrnoException) => countOnce(counters, socket, socketErrorReason(err)));
  try {
    tcpHandler!(socket);
  } catch (err) {
    countOnce(counters, socket, 'handler_error');
    log.error({ err }, 'handler failed');
    socket.destroy();
  }
}

// fdpass: hand-offs arrive on their own channel, and closes are told back on it.
let fdpass: HandoffChannel | undefined;

// The app's own server (forms 1 and 2), whose maxConnections and blockList (app-accept.ts) hold here too.
const ownServer = app.form === 'server' ? app.server : undefined;

// The connections its descriptors (handoff) and the app's maxConnections allow, told the primary
// when it changes (handoff admits by it; every strategy shows it, acceptor_worker_capacity);
// warned once where the app's own descriptors leave fewer than --max-connections.
const limit = handoff ? nofile()?.soft : undefined;
const budget = limit === undefined ? undefined : new DescriptorBudget(limit, () => sockets.size);
let toldCap: number | undefined;
let ownCap: number | undefined;
function capacityChanged(): number | undefined {
  const own = budget?.capacity();
  if (own !== undefined && own < opts.maxConnections && (ownCap === undefined || ownCap >= opts.maxConnections)) {
    log.warn({ limit, capacity: own, maxConnections: opts.maxConnections }, 'worker descriptors hold fewer connections than --max-connections (the app holds the rest): the rest wait or are told busy');
  }
  ownCap = own;
  const cap = Math.min(own ?? Infinity, appLimit(ownServer));
  // Nothing to tell where nothing has ever limited it; no limit any more goes as the largest number (JSON has no Infinity).
  if (cap === toldCap || (toldCap === undefined && cap === Infinity)) return undefined;
  toldCap = cap;
  return Math.min(cap, Number.MAX_SAFE_INTEGER);
}

// Where the primary counts per client (--max-connections-per-client), closes are told by client
// key; with sticky sessions too, each connection's key is kept (a connection handed back at a
// reload goes to its client's slot).
const keepKeys = workersKeepKeys(opts);
const byKey = closesByKey(opts);
const keyOf = new Map<Socket, number>();
let closedKeys: number[] = [];

function flushClosed(): void {
  const n = closedUnreported;
  closedUnreported = 0;
  if (n > 0) {
    if (fdpass) fdpass.report(n);
    else send({ acceptor: 'd', n });
  }
  if (closedKeys.length === 0) return;
  const k = closedKeys;
  closedKeys = [];
  if (fdpass) fdpass.reportKeys(k);
  else send({ acceptor: 'd', n: k.length, k });
}

/** Frees connections' slots in the primary (handoff), batched per event-loop turn: `n` closed, of client `key`. */
function reportClosed(n = 1, key = 0): void {
  // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, a flush that finds nothing sends nothing
  if (closedUnreported === 0 && closedKeys.length === 0) setImmediate(flushClosed);
  if (!byKey) closedUnreported += n;
  else for (let i = 0; i < n; i++) closedKeys.push(key);
}

/** Handed back to the primary at a reload's drain: its slot went with it, never reported closed. */
const moved = new WeakSet<Socket>();

function onClose(this: Socket): void {
  sockets.delete(this);
  // Stryker disable next-line ConditionalExpression: equivalent, without a dispatcher the primary ignores the report
  let key = 0;
  if (keepKeys) {
    key = keyOf.get(this) ?? 0;
    keyOf.delete(this);
  }
  if (handoff && !(draining && moved.has(this))) reportClosed(1, key);
  if (draining && sockets.size === 0) drained();
}

// Where a connection goes, chosen once: the accept path makes no choice per connection.
const httpServer = http?.server;
const deliver: (socket: Socket) => void = tls ?? appServer?.take ?? (httpServer ? (s) => void httpServer.emit('connection', s) : serveTcp);
// The server whose options (noDelay, keep-alive, half-open, pauseOnConnect, highWaterMark) each
// connection gets, as its own accept would give them: the app's, or the acceptor's HTTP server. A
// bare TCP handler has none. `direct`: no TLS server of the acceptor's stands between.
const optionsFrom = ownServer ?? httpServer;
const direct = appServer?.tlsServer === undefined;

const refuse = makeRefuse(busyFor(opts));

/** Past the app's own maxConnections: told busy where node would close it unanswered; 'drop' as under node. */
function refuseAtAppLimit(server: Server, socket: Socket): void {
  counters.rejected.worker_full++;
  emitDrop(server, socket);
  refuse(socket);
}

/** A client the app's blockList denies: closed unanswered, as node closes it (no busy answer to a client it will not serve). */
function refuseBlocked(socket: Socket): void {
  counters.rejected.blocked++;
  socket.on('error', () => {});
  socket.destroy();
}

/** What the app server's own accept would refuse (app-accept.ts), in its order: true when refused here. */
function refusedByApp(server: Server, socket: Socket): boolean {
  if (atAppLimit(server)) refuseAtAppLimit(server, socket);
  else if (blocked(server, socket)) refuseBlocked(socket);
  else return false;
  return true;
}

function serve(socket: Socket, key = 0): void {
  sockets.add(socket);
  if (keepKeys) keyOf.set(socket, key);
  socket.on('close', onClose);
  // Handed over: the app's blockList applies here, and its limit as the primary last heard it; a
  // lower one since is kept here. (The socket is kept and its close reported like any other: the
  // primary counts its slot.)
  if (handoff && ownServer && refusedByApp(ownServer, socket)) return;
  handled++;
  if (optionsFrom) adopt(optionsFrom, socket, direct);
  deliver(socket);
}

// Strategies where the worker accepts: it is its own admission, --max-connections at most.
let listener: ReturnType<typeof createNetServer> | undefined;
if (!handoff) {
  listener = createNetServer((socket) => {
    counters.accepted++;
    if (sockets.size >= opts.maxConnections || draining) {
      counters.rejected[draining ? 'shutting_down' : 'worker_full']++;
      refuse(socket);
      return;
    }
    if (ownServer && refusedByApp(ownServer, socket)) return;
    serve(socket);
  });
  const reusePort = opts.strategy === 'reuseport';
  listener.on('error', (err) => {
    log.fatal({ err, address: config.address, port: config.port }, 'worker cannot listen');
    process.exit(1);
  });
  // The worker's own listen, past the app's interception.
  const listen = (o: object, cb: () => void): void => (intercept ? intercept.listenOwn(listener!, o, cb) : void listener!.listen(o, cb));
  await new Promise<void>((resolve) =>
    // An inherited socket (systemd): node:cluster opens it in the primary from the same number.
    config.fd !== undefined
      ? listen({ fd: config.fd }, resolve)
      : listen({ host: config.address, port: config.port, backlog: config.listenBacklog, exclusive: reusePort, ...(reusePort ? { reusePort: true } : {}) }, resolve),
  );
}

if (handoff && config.transport === 'fdpass') {
  const failed = (n: number, keys: ArrayLike<number>): void => {
    counters.errors.handoff_failed += n;
    if (!byKey) reportClosed(n);
    else for (let i = 0; i < n; i++) reportClosed(1, keys[i] ?? 0);
  };
  fdpass = receiveHandoffs((socket, waitedMs, key) => (metrics?.dispatch.observe(waitedMs / 1000), serve(socket, key)), failed, log);
}

process.on('message', (msg: ToWorker, handle?: Conn) => {
  if (msg.acceptor === 'c') {
    metrics?.dispatch.observe((clock() - msg.a) / 1000);
    // The primary sends the kernel's handle as it accepted it; a Socket where it could not.
    if (handle) serve(asSocket(handle), msg.k ?? 0);
    else {
      // Closed in transit (Node delivers no handle): its slot must still be freed. Only a
      // net.Socket can arrive so (Node drops one the primary closed while it was queued), which
      // only accept.ts's fallback sends; a raw handle always arrives.
      // Stryker disable next-line all: no test reaches this block (a raw handle always arrives)
      counters.errors.handoff_failed++;
      // Stryker disable next-line all: no test reaches this block (a raw handle always arrives)
      reportClosed(1, msg.k ?? 0);
    }
  } else if (msg.acceptor === 'm') {
    void metrics?.register.getMetricsAsJSON().then((m) => send({ acceptor: 'm', id: msg.id, metrics: m, c: counts()! }));
  } else if (
    // Stryker disable next-line ConditionalExpression,StringLiteral: equivalent, only the primary writes to this channel, and 'drain' is the only other kind it sends
    msg.acceptor === 'drain'
  ) {
    drain(msg.move === true);
  }
});

let migration: Migration | undefined;

/**
 * A reload's drain over fdpass: idle plain HTTP/1.1 connections go back to the primary for the new
 * worker. Not over TLS (the session lives in this process) nor HTTP/2; upgraded connections and
 * --protocol tcp have no idle state to tell.
 */
function startMigration(): Migration | undefined {
  const server = credentials ? undefined : (httpServer ?? (app.form === 'server' ? app.server : undefined));
  if (!fdpass || !(server instanceof HttpServer)) return undefined;
  const channel = fdpass;
  return migrateIdle(server, sockets, (s) => {
    const fd = (s as unknown as { _handle?: { fd?: number } })._handle?.fd;
    // Stryker disable next-line ConditionalExpression,EqualityOperator: a connection node:http keeps always has its descriptor
    if (fd === undefined || fd < 0 || !channel.give(fd, keyOf.get(s) ?? 0)) return false;
    // The primary's message holds the connection now: closing this copy leaves it open.
    moved.add(s);
    s.destroy();
    return true;
  });
}

function drain(move: boolean): void {
  if (draining) {
    // A shutdown during a reload's drain: no worker follows, so what was not handed back yet
    // drains as at a shutdown. (Any other second drain changes nothing: the primary sends one per worker.)
    if (!move && migration) {
      migration.stop();
      migration = undefined;
      log.info({ open: sockets.size }, 'draining for shutdown: no more connections handed back');
      appServer?.drain(sockets);
      http?.drain(sockets);
    }
    return;
  }
  draining = true;
  migration = move ? startMigration() : undefined;
  log.info({ open: sockets.size, upgraded: countUpgraded(sockets), handingBack: migration !== undefined }, 'draining');
  listener?.close();
  // The app's own graceful shutdown, as under PM2 or Kubernetes: its SIGTERM (or SIGINT)
  // listeners run; then it owns its exit, and this worker ends when it has closed everything.
  appServer?.drain(sockets, migration);
  appOwnsExit = shutdown.emit((err) => log.error({ err }, "the app's shutdown listener failed"));
  http?.drain(sockets, migration);
  appServer?.close(appOwnsExit);
  if (sockets.size === 0) drained();
}

let exitScheduled = false;
/**
 * The last connection has closed: exit after this turn, so that what its close set off runs first
 * (the app's server emits 'close' on the next tick, and its listeners are the app's shutdown).
 */
function drained(): void {
  if (exitScheduled) return;
  exitScheduled = true;
  setImmediate(() => {
    exitScheduled = false;
    // A hand-off already on its way when the drain began is served first.
    if (sockets.size === 0) exitDrained();
  });
}


function exitDrained(): void {
  // The last close reports and the counters must reach the primary before the process goes.
  if (appOwnsExit) {
    // The app may still be closing what its shutdown listener began (a database pool, say): the
    // process ends when it has, or when the app exits. The channel no longer keeps it alive, and
    // the heartbeats go on carrying the counters until then.
    log.info('drained; the app exits when its shutdown is done');
    flushClosed();
    fdpass?.flushSync(1000);
    send({ acceptor: 'hb', c: counts() });
    process.channel?.unref();
    return;
  }
  log.info('drained; exiting');
  if (fdpass) {
    flushClosed();
    fdpass.flushSync(1000);
  }
  // The IPC channel is ordered: the exit waits for its last message.
  flushClosed();
  if (!process.connected) process.exit(0);
  send({ acceptor: 'hb', c: counts() }, () => process.exit(0));
  setTimeout(() => process.exit(0), 1000);
}

// Heartbeats let the primary stop handing connections to a stalled worker within STALL_MS,
// and the watchdog replace it after --watchdog.
// Each carries the counters: a worker that dies loses at most one heartbeat's worth of them.
// And, in handoff, what its descriptors can hold, when that changed.
setInterval(() => send({ acceptor: 'hb', c: counts(), cap: capacityChanged() }), HEARTBEAT_MS).unref();
// The primary gone (the channel closed): node:cluster's worker exits by itself (cluster/child.js,
// 'disconnect'), in every strategy and with requests in flight; cli.test.ts checks all three.
send({ acceptor: 'ready', cap: capacityChanged() });
