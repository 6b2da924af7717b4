// startAcceptor(): the primary process. Resolves and binds the endpoint, forks the workers,
// wires the strategy, and owns the lifecycle (drain on close, rolling reload).
import cluster from 'node:cluster';
import type { Server } from 'node:net';
import { clientPrefixes, closesByKey, needsClientKeys, OptionError, resolveOptions, type AcceptorOptions } from '../options.js';
import { limitLog } from '../admission/limited.js';
import { createLogger, type Logger } from '../log.js';
import { resolveEndpoint } from '../endpoint/resolve.js';
import { bindEndpoint, effectiveBacklog, listenServer, probeEndpoint, somaxconn } from '../endpoint/bind.js';
import { inheritedAddress, inheritedFd } from '../endpoint/inherited.js';
import { busyFor, makeRefuse } from '../admission/busy.js';
import { Handoff } from '../dispatch/handoff.js';
import { chooseTransport, type Transport } from '../dispatch/transport.js';
import { IpcTransport } from '../dispatch/ipc.js';
import { FdpassTransport } from '../dispatch/fdpass.js';
import { loadFdpass } from '../native/fdpass.js';
import { Counters } from '../metrics/counters.js';
import { WorkerTotals } from '../metrics/totals.js';
import { primaryRegistry } from '../metrics/primary.js';
import { ClusterScrape } from '../metrics/cluster.js';
import { serveMetrics, type ReadyCheck } from '../metrics/server.js';
import { VERSION } from '../version.js';
import { Pool } from './pool.js';
import { loadCredentials } from '../worker/tls.js';
import { Readiness } from './readiness.js';
import { fitDescriptors } from './descriptors.js';

export interface Acceptor {
  readonly options: AcceptorOptions;
  /** The address that was bound (the first of the host's addresses that would bind). */
  readonly address: string;
  readonly port: number;
  /** Port of /metrics, if served. */
  readonly metricsPort: number | undefined;
  readonly log: Logger;
  /** The cluster-wide scrape, as /metrics serves it. */
  metrics(): Promise<string>;
  /**
   * Resolves once every worker has been ready. Rejects if the handler cannot be loaded before any
   * worker was ever ready (the error says which module and why); close() then.
   */
  readonly ready: Promise<void>;
  /** Rolling reload: new worker up and ready, then the old one drained, one slot at a time. */
  reload(): Promise<void>;
  /** Stops accepting, drains, stops workers. Resolves 0 if all drained in time, 1 if any was killed. */
  close(): Promise<number>;
}

export async function startAcceptor(input: Partial<AcceptorOptions> = {}): Promise<Acceptor> {
  if (!cluster.isPrimary) throw new Error('startAcceptor() must run in the primary process, not in a cluster worker');
  const opts = resolveOptions(input);
  const log = createLogger(0, opts.logLevel, opts.logFormat);
  // A certificate that does not load fails the start here, naming the file and the cause.
  const credentials = loadCredentials(opts);
  const handoff = opts.strategy === 'handoff';
  // Chosen before binding: an explicit --transport fdpass that cannot load is a bad option.
  const transportChoice = handoff ? chooseTransport(opts.transport) : undefined;
  if (transportChoice?.warning) log.warn(transportChoice.warning);
  const transportName = transportChoice?.name ?? 'none';

  const budget = fitDescriptors(opts, log);

  const fd = inheritedFd();
  // Reached only where Node has reusePort (>= 22.12): resolveOptions refuses reuseport before. Its
  // mutants fail test/endpoint/inherited.test.ts and test/dispatch/strategies.test.ts on Node 24
  // (checked by hand); on Node 20 they survive.
  if (fd !== undefined && opts.strategy === 'reuseport') {
    // Stryker disable next-line StringLiteral: the option name is read by library callers only, which would need a library start under socket activation
    throw new OptionError('strategy', 'invalid --strategy "reuseport" with a socket inherited from systemd (LISTEN_FDS): each worker binds a socket of its own; use handoff, round-robin or shared');
  }
  // Stryker disable next-line ConditionalExpression,ArrayDeclaration: equivalent, with an inherited socket the candidates are never read
  const candidates = fd === undefined ? await resolveEndpoint(opts.host) : [];
  if (fd === undefined) log.info({ host: opts.host ?? null, addresses: candidates.map((c) => c.address) }, 'resolved endpoint');
  else log.info({ fd }, 'serving the listening socket inherited from systemd (socket activation): --host, --port and --listen-backlog do not apply; its Backlog= does');
  // handoff: the exact limit is the primary's own queue (--backlog); the kernel's queue only
  // buffers the moments the primary is off-CPU, and if it overflowed the kernel would drop SYNs
  // silently, so it gets the kernel's maximum. Where workers accept, it is the only queue.
  const listenBacklog = opts.listenBacklog ?? (handoff ? Math.max(opts.backlog, somaxconn() ?? 4096) : opts.backlog);
  const kernelBacklog = fd === undefined ? effectiveBacklog(listenBacklog) : undefined;
  if (kernelBacklog !== undefined && kernelBacklog !== listenBacklog) {
    log.warn({ listenBacklog, kernelBacklog }, 'kernel caps the listen backlog at net.core.somaxconn');
  }

  // handoff: the primary holds the socket and accepts. The others: bind once here so a bad
  // address fails the start in the primary, then the workers listen on it.
  const bound =
    fd !== undefined
      ? // Stryker disable next-line BooleanLiteral: equivalent on Node 20–24, the dispatcher takes the raw handles (accept.ts), and pausing matters only on its 'connection' fallback
        { ...inheritedAddress(fd), server: handoff ? await listenServer({ fd }, true) : undefined }
      : handoff
        ? await bindEndpoint(candidates, opts.port, listenBacklog)
        : { ...(await probeEndpoint(candidates, opts.port, listenBacklog)), server: undefined };
  log.info({ address: bound.address, port: bound.port, backlog: opts.backlog, kernelBacklog, strategy: opts.strategy, transport: transportName, protocol: opts.protocol, tls: credentials ? { validTo: credentials.validTo, http2: opts.protocol === 'http' && opts.http2, busy: opts.tlsBusy } : false, workers: opts.workers, maxConnections: opts.maxConnections }, 'listening');

  const counters = new Counters();
  const totals = new WorkerTotals();
  cluster.schedulingPolicy = opts.strategy === 'round-robin' ? cluster.SCHED_RR : cluster.SCHED_NONE;
  let dispatch: Handoff<unknown> | undefined;
  let scrape: ClusterScrape | undefined;
  const pool = new Pool(opts, { options: opts, address: bound.address, port: bound.port, listenBacklog, transport: transportChoice?.name, fd }, counters, log, {
    ready: () => dispatch?.onReady(),
    stalled: () => dispatch?.flushIfNoWorker(),
    exit: (rec) => dispatch?.onExit(rec),
    counts: (rec, c) => totals.update(rec, c),
    message: (rec, msg) => {
      if (msg.acceptor === 'd') dispatch?.closed(rec, msg.n, msg.k);
      else if (msg.acceptor === 'm') {
        totals.update(rec, msg.c);
        scrape?.onMessage(rec, msg);
      }
    },
    link: () => dispatch?.transport.prepareFork(),
    movable: (rec) => dispatch?.transport.movable(rec) ?? false,
    failed: (error) => failStart(new Error(error)),
  });
  if (handoff) {
    const busy = busyFor(opts);
    const keys = needsClientKeys(opts) ? clientPrefixes(opts) : undefined;
    const transport = (transportName === 'fdpass' ? new FdpassTransport((loadFdpass() as { addon: never }).addon, busy, budget, keys, closesByKey(opts)) : new IpcTransport(makeRefuse(busy, budget.maxLingering), keys)) as Transport<unknown>;
    const onLimited = opts.maxConnectionsPerClient > 0 ? limitLog(log, opts.maxConnectionsPerClient, clientPrefixes(opts), (c) => transport.peer(c)) : undefined;
    dispatch = new Handoff(bound.server as Server, pool, opts.maxConnections, opts.backlog, opts.queueTimeout, counters, transport, Math.max(1, Math.floor(budget.acceptBatch / opts.workers)), {
      fair: opts.queue === 'fair',
      maxPerClient: opts.maxConnectionsPerClient,
      stickySlots: opts.sticky === 'client' ? opts.workers : 0,
      ...(onLimited ? { onLimited } : {}),
    });
  }
  const queueDepth = (): number | undefined => dispatch?.queue.length;
  const readiness = new Readiness({ readyWorkers: () => pool.ready.length, queueDepth, counters, threshold: opts.readyQueueThreshold ?? Math.floor(opts.backlog / 2) });
  const notReady: ReadyCheck = () => readiness.reason();
  let metricsServer: import('node:http').Server | undefined;
  if (opts.metrics) {
    const clients = dispatch ? clientsNow(dispatch, opts.maxConnectionsPerClient) : undefined;
    const registry = primaryRegistry(opts, { counters, totals, pool, queueDepth, port: bound.port, kernelBacklog, version: VERSION, transport: transportName, notReady, ...(clients ? { clients } : {}) });
    scrape = new ClusterScrape(pool, registry);
    try {
      metricsServer = await serveMetrics(opts.metricsHost, opts.metricsPort, opts.metricsToken, () => scrape!.text(), log, notReady);
    } catch (err) {
      bound.server?.close();
      throw err;
    }
    const m = metricsServer.address() as { address: string; port: number };
    log.info({ address: m.address, port: m.port, token: opts.metricsToken !== undefined }, 'metrics listening');
  }
  let failStart: (err: Error) => void = () => {};
  const ready = Promise.race([
    pool.start(),
    new Promise<never>((_, reject) => (failStart = reject)),
  ]).then(() => log.info({ workers: opts.workers }, 'acceptor ready'));
  ready.catch(() => {}); // a caller that never awaits it must not crash on the rejection

  let closing: Promise<number> | undefined;
  let reloading: Promise<void> | undefined;
  return {
    options: opts,
    address: bound.address,
    port: bound.port,
    metricsPort: metricsServer ? (metricsServer.address() as { port: number }).port : undefined,
    log,
    ready,
    metrics: () => (scrape ? scrape.text() : Promise.reject(new Error('metrics are off (--no-metrics)'))),
    reload() {
      if (closing) return Promise.resolve();
      try {
        // Rotated certificate files are read by the new workers; files that do not load now
        // would fail every one of them, so the reload stops before it starts.
        loadCredentials(opts);
      } catch (err) {
        log.error({ err: (err as Error).message }, 'reload refused: the workers keep serving with the certificate they have');
        return Promise.resolve();
      }
      if (reloading) log.info('reload requested while one is under way: the one under way covers it');
      reloading ??= (log.info('rolling reload'), pool.reload().finally(() => {
        reloading = undefined;
        log.info('reload done');
      }));
      return reloading;
    },
    close() {
      closing ??= (async () => {
        readiness.drain();
        log.info({ drainTimeout: opts.drainTimeout }, 'shutting down: draining');
        // handoff keeps the port open while draining, so a late client is told busy instead
        // of being reset with the kernel's accept queue.
        dispatch?.close();
        const t0 = Date.now();
        const killed = await pool.stop();
        // No waiting on close's callback: node:net stops counting a socket once it is sent to a
        // worker, so the callback would never come. The workers have exited: nothing is open.
        dispatch?.transport.stop();
        bound.server?.close();
        readiness.stop();
        metricsServer?.close();
        metricsServer?.closeAllConnections();
        log.info({ ms: Date.now() - t0, killed }, 'stopped');
        return killed > 0 ? 1 : 0;
      })();
      return closing;
    },
  };
}

/** The clients gauges, read at scrape time (O(clients holding connections)). */
function clientsNow(d: Handoff<unknown>, limit: number): () => { waiting: number; connected?: number; atLimit?: number } {
  return () => {
    d.settle();
    if (!d.clients) return { waiting: d.queue.clientsWaiting };
    let atLimit = 0;
    for (const k of d.clients.keys()) if (d.clients.heldBy(k) + d.queue.waitingOf(k) >= limit) atLimit++;
    return { waiting: d.queue.clientsWaiting, connected: d.clients.clients, atLimit };
  };
}
