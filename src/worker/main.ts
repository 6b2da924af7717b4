// A worker process: loads the user's handler, serves the connections it is given (handoff) or
// accepts itself (round-robin / shared / reuseport), reports closes and heartbeats, drains.
import { createServer as createNetServer, type Socket } from 'node:net';
import { createLogger } from '../log.js';
import { loadError, loadHandler } from '../handler/load.js';
import { busyFor, makeRefuse } from '../admission/busy.js';
import { Counters, countOnce } from '../metrics/counters.js';
import { workerRegistry } from '../metrics/worker.js';
import { clock } from '../clock.js';
import { asSocket, type Conn } from '../dispatch/accept.js';
import { createHttp } from './http.js';
import { sweepIdle } from './idle.js';
import { HEARTBEAT_MS, type FromWorker, type ToWorker, type WorkerConfig } from './protocol.js';
import { receiveHandoffs, type HandoffChannel } from './fdpass.js';
import { loadCredentials, socketErrorReason, terminateTls, type Credentials } from './tls.js';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';

const config = JSON.parse(process.env.ACCEPTOR_WORKER_CONFIG ?? 'null') as WorkerConfig;
delete process.env.ACCEPTOR_WORKER_CONFIG; // the handler's own child processes need not see it
const { options: opts, slot } = config;
const log = createLogger(slot, opts.logLevel, opts.logFormat);
const counters = new Counters();
// Always with a callback: without one, a send that races the primary's death (EPIPE) would be
// an uncaught 'error'. The worker exits on 'disconnect' then anyway. (Not checking `connected`
// survives mutation, equivalent: on a closed channel send() passes its error to the callback.)
const ignore = (): void => {};
const send = (msg: FromWorker, cb: () => void = ignore): void => {
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

// Read by every new worker: a reload picks up certificate files rotated in place. One that no
// longer loads fails this worker's start, and the reload keeps the old workers serving.
let credentials: Credentials | undefined;
try {
  credentials = loadCredentials(opts);
} catch (err) {
  await failStart((err as Error).message, { err });
}

let handler;
try {
  handler = await loadHandler(opts.handler, opts.protocol);
} catch (err) {
  await failStart(`cannot load handler ${opts.handler}: ${loadError(opts.handler!, err)}`, { handler: opts.handler, err });
}

const sockets = new Set<Socket>();
let draining = false;
let closedUnreported = 0;
let handled = 0;
// With --no-metrics there is no registry at all: no collectors, no histogram on the hand-off path.
const metrics = opts.metrics ? workerRegistry(slot, counters, () => sockets.size, () => handled, credentials !== undefined) : undefined;
const handoff = opts.strategy === 'handoff';

sweepIdle(sockets, opts.idleTimeout, (socket) => {
  countOnce(counters, socket, 'timeout');
  socket.destroy();
});

const http = opts.protocol === 'http' ? createHttp(handler as Parameters<typeof createHttp>[0], opts, counters, log, credentials) : undefined;
const tcpHandler = handler as (s: Socket) => unknown;
// TLS: connections go to the TLS server, and what it decrypts to the handler.
const tlsServer = credentials && !http ? createTlsServer({ cert: credentials.cert, key: credentials.key }, (s) => serveTcp(s)) : undefined;
const tls = credentials ? terminateTls((http?.server ?? tlsServer) as TlsServer, counters, metrics?.handshake, log) : undefined;

function serveTcp(socket: Socket): void {
  // Counted here, and never an uncaught exception when the handler attaches no listener of its own.
  socket.on('error', (err: NodeJS.ErrnoException) => countOnce(counters, socket, socketErrorReason(err)));
  try {
    tcpHandler(socket);
  } catch (err) {
    countOnce(counters, socket, 'handler_error');
    log.error({ err }, 'handler failed');
    socket.destroy();
  }
}

// fdpass: hand-offs arrive on their own channel, and closes are told back on it.
let fdpass: HandoffChannel | undefined;

function flushClosed(): void {
  const n = closedUnreported;
  closedUnreported = 0;
  if (n === 0) return;
  if (fdpass) fdpass.report(n);
  else send({ acceptor: 'd', n });
}

/**
 * Frees connections' slots in the primary (handoff), batched per event-loop turn. (Scheduling a
 * flush on every close, or reporting 0, survives mutation, equivalent: a flush that finds
 * nothing sends nothing, and a report of 0 frees nothing.)
 */
function reportClosed(n = 1): void {
  if (closedUnreported === 0) setImmediate(flushClosed);
  closedUnreported += n;
}

function onClose(this: Socket): void {
  sockets.delete(this);
  // (Reporting in every strategy survives mutation, equivalent: without a dispatcher the primary
  // ignores the report.)
  if (handoff) reportClosed();
  if (draining && sockets.size === 0) exitDrained();
}

function serve(socket: Socket): void {
  handled++;
  sockets.add(socket);
  socket.on('close', onClose);
  if (tls) tls(socket);
  else if (http) http.server.emit('connection', socket);
  else serveTcp(socket);
}

// Strategies where the worker accepts: it is its own admission, --max-connections at most.
let listener: ReturnType<typeof createNetServer> | undefined;
if (!handoff) {
  const refuse = makeRefuse(busyFor(opts));
  listener = createNetServer((socket) => {
    counters.accepted++;
    if (sockets.size >= opts.maxConnections || draining) {
      counters.rejected[draining ? 'shutting_down' : 'worker_full']++;
      refuse(socket);
      return;
    }
    serve(socket);
  });
  const reusePort = opts.strategy === 'reuseport';
  listener.on('error', (err) => {
    log.fatal({ err, address: config.address, port: config.port }, 'worker cannot listen');
    process.exit(1);
  });
  await new Promise<void>((resolve) =>
    // An inherited socket (systemd): node:cluster opens it in the primary from the same number.
    config.fd !== undefined
      ? listener!.listen({ fd: config.fd }, resolve)
      : listener!.listen({ host: config.address, port: config.port, backlog: config.listenBacklog, exclusive: reusePort, ...(reusePort ? { reusePort: true } : {}) }, resolve),
  );
}

if (handoff && config.transport === 'fdpass') {
  const failed = (n: number): void => {
    counters.errors.handoff_failed += n;
    reportClosed(n);
  };
  fdpass = receiveHandoffs((socket, waitedMs) => (metrics?.dispatch.observe(waitedMs / 1000), serve(socket)), failed, log);
}

process.on('message', (msg: ToWorker, handle?: Conn) => {
  if (msg.acceptor === 'c') {
    metrics?.dispatch.observe((clock() - msg.a) / 1000);
    // The primary sends the kernel's handle as it accepted it; a Socket where it could not.
    if (handle) serve(asSocket(handle));
    else {
      // Closed in transit (Node delivers no handle): its slot must still be freed. Only a
      // net.Socket can arrive so (Node drops one the primary closed while it was queued), which
      // only accept.ts's fallback sends; a raw handle always arrives. So no test reaches this
      // block, and its mutants (an empty block, the counter decremented) survive.
      counters.errors.handoff_failed++;
      reportClosed();
    }
  } else if (msg.acceptor === 'm') {
    void metrics?.register.getMetricsAsJSON().then((m) => send({ acceptor: 'm', id: msg.id, metrics: m }));
  } else if (msg.acceptor === 'drain') {
    // (Only the primary writes to this channel, and 'drain' is the only other kind it sends, so
    // the mutant that drains on any message survives, equivalent.)
    drain();
  }
});

function drain(): void {
  // The primary sends one 'drain' per worker (a SIGTERM during a reload's drain shares it:
  // pool.ts, retire()), and every step below is idempotent besides: the guard's mutant survives,
  // equivalent.
  if (draining) return;
  draining = true;
  log.info({ open: sockets.size }, 'draining');
  listener?.close();
  http?.drain(sockets);
  if (sockets.size === 0) exitDrained();
}

function exitDrained(): void {
  // The last close report must reach the primary before the process goes.
  log.info('drained; exiting');
  // (Without this block the reports would go as an IPC 'd', which the primary also takes, and
  // any left in the channel would be lost with the worker, whose exit frees its slots anyway: the
  // mutant survives, equivalent.)
  if (fdpass) {
    flushClosed();
    fdpass.flushSync(1000);
    process.exit(0);
  }
  const n = closedUnreported;
  closedUnreported = 0;
  // (Sending when n is 0, or without checking `connected`, survives mutation, equivalent: a
  // report of 0 frees nothing, and on a closed channel node:cluster's worker exits by itself.
  // Not sending at all fails pool.test.ts: the primary counts the connection lost, worker_exit.)
  if (n > 0 && process.connected) send({ acceptor: 'd', n }, () => process.exit(0));
  else process.exit(0);
}

// Heartbeats let the primary stop handing connections to a stalled worker within STALL_MS,
// and the watchdog replace it after --watchdog.
setInterval(() => send({ acceptor: 'hb' }), HEARTBEAT_MS).unref();
// The primary gone (the channel closed): node:cluster's worker exits by itself (cluster/child.js,
// 'disconnect'), in every strategy and with requests in flight; cli.test.ts checks all three.
// Ctrl-C, a closed terminal and systemd's default stop signal the whole process group; a worker
// that died of it would cut its in-flight requests. The primary drains the workers instead.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => {});
send({ acceptor: 'ready' });
