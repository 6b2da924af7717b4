// The primary's registry. Every value is read at scrape time from state the accept path keeps
// anyway (plain numbers), so metrics cost the accept path nothing.
import { Gauge, Registry } from 'prom-client';
import { RESTART_REASONS, type Counters } from './counters.js';
import { connectionCounters, readCounter, readLabelledCounter } from './collect.js';
import { kernelQueuesReadable, listenOverflows, listenQueueDepth } from './kernel.js';
import { LABEL_WORKER, PRIMARY_WORKER } from './names.js';
import { defaultMetrics } from './defaults.js';
import type { ReadyCheck } from './server.js';
import type { WorkerTotals } from './totals.js';
import type { Pool, WorkerState } from '../primary/pool.js';
import type { AcceptorOptions } from '../options.js';

export interface PrimaryState {
  counters: Counters;
  /** The workers' counters, kept across their replacement. */
  totals: WorkerTotals;
  pool: Pool;
  /** Connections waiting in the primary's queue now (handoff), else undefined. */
  queueDepth: () => number | undefined;
  port: number;
  /** undefined for an inherited socket: systemd set its backlog. */
  kernelBacklog: number | undefined;
  version: string;
  /** Hand-off transport (handoff), or `none` where the workers accept. */
  transport: string;
  notReady: ReadyCheck;
  /** handoff: clients with connections waiting; with --max-connections-per-client, also those holding any and those at the limit. */
  clients?: () => { waiting: number; connected?: number; atLimit?: number };
}

const STATES: WorkerState[] = ['starting', 'ready', 'stalled', 'draining'];

export function primaryRegistry(opts: AcceptorOptions, s: PrimaryState): Registry {
  const register = new Registry();
  const registers = [register];
  defaultMetrics(register, { [LABEL_WORKER]: PRIMARY_WORKER });

  new Gauge({ name: 'acceptor_info', help: 'Configuration of this acceptor (value 1).', labelNames: ['strategy', 'transport', 'protocol', 'version'], registers }).set(
    { strategy: opts.strategy, transport: s.transport, protocol: opts.protocol, version: s.version },
    1,
  );
  new Gauge({
    name: 'acceptor_ready',
    help: '1 while /readyz answers 200: a worker ready, not draining, not shedding load.',
    registers,
    collect() {
      this.set(s.notReady() === undefined ? 1 : 0);
    },
  });
  connectionCounters(registers, s.counters, s.totals);
  const slots = Array.from({ length: opts.workers }, (_, i) => String(i + 1));
  readLabelledCounter(
    registers,
    { name: 'acceptor_connections_handled_total', help: 'Connections a worker took to serve (handed over, or accepted and admitted), by worker slot: every worker that has held the slot.' },
    LABEL_WORKER,
    slots,
    (slot) => s.totals.handled(Number(slot)),
  );
  if (s.queueDepth() !== undefined) {
    new Gauge({
      name: 'acceptor_queue_depth',
      help: "Connections waiting in the acceptor's own queue for a worker slot.",
      registers,
      collect() {
        this.set(s.queueDepth() ?? 0);
      },
    });
    new Gauge({ name: 'acceptor_queue_capacity', help: "Capacity of the acceptor's queue (--backlog).", registers }).set(opts.backlog);
    readCounter(
      registers,
      { name: 'acceptor_connections_migrated_total', help: 'Idle keep-alive connections a draining worker handed back, served on by another worker without the client reconnecting (fdpass). Each is handled again by its new worker.' },
      () => s.counters.migrated,
    );
  }
  if (s.clients) {
    const clients = s.clients;
    new Gauge({ name: 'acceptor_clients_waiting', help: 'Clients (--client-prefix) with connections waiting in the queue now.', registers, collect() {
      this.set(clients().waiting);
    } });
    if (opts.maxConnectionsPerClient > 0) {
      new Gauge({ name: 'acceptor_clients_connected', help: 'Clients holding connections in the workers now (counted for --max-connections-per-client).', registers, collect() {
        this.set(clients().connected ?? 0);
      } });
      new Gauge({ name: 'acceptor_clients_at_limit', help: 'Clients at --max-connections-per-client now (held plus waiting): their next connection is told busy.', registers, collect() {
        this.set(clients().atLimit ?? 0);
      } });
      new Gauge({ name: 'acceptor_client_max_connections', help: 'Connections one client may hold plus have waiting (--max-connections-per-client).', registers }).set(opts.maxConnectionsPerClient);
    }
  }
  new Gauge({ name: 'acceptor_worker_max_connections', help: 'Connections one worker holds before it counts as full (--max-connections).', registers }).set(opts.maxConnections);
  new Gauge({
    name: 'acceptor_worker_capacity',
    help: "Connections each ready worker takes at most, as its worker last told: --max-connections, or fewer where its descriptors or its app server's own maxConnections allow fewer.",
    labelNames: [LABEL_WORKER],
    registers,
    collect() {
      this.reset();
      for (const r of s.pool.ready) this.set({ [LABEL_WORKER]: String(r.slot) }, Math.min(opts.maxConnections, r.capacity));
    },
  });
  // Absent, not zero, where the kernel cannot tell.
  if (kernelQueuesReadable()) {
    new Gauge({
      name: 'acceptor_listen_queue_depth',
      help: "Connections in the kernel's accept queue of the listening socket(s) now (Linux: sock_diag, as ss -ltn Recv-Q; /proc/net/tcp rx_queue without the native addon).",
      registers,
      async collect() {
        this.set((await listenQueueDepth(s.port)) ?? 0);
      },
    });
    if (s.kernelBacklog !== undefined) {
      new Gauge({ name: 'acceptor_listen_backlog', help: "Effective kernel listen backlog: --listen-backlog capped by net.core.somaxconn.", registers }).set(s.kernelBacklog);
    }
  }
  const overflowBase = listenOverflows();
  if (overflowBase !== undefined) {
    readCounter(
      registers,
      { name: 'acceptor_listen_overflows_total', help: 'TcpExt ListenOverflows since the acceptor started. Host-wide: the kernel counts every listening socket on the host.' },
      () => Math.max(0, (listenOverflows() ?? overflowBase) - overflowBase),
    );
  }
  new Gauge({
    name: 'acceptor_workers',
    help: 'Worker processes by state.',
    labelNames: ['state'],
    registers,
    collect() {
      const n: Record<string, number> = { starting: 0, ready: 0, stalled: 0, draining: 0 };
      for (const r of s.pool.records) n[r.state]!++;
      for (const state of STATES) this.set({ state }, n[state]!);
    },
  });
  readLabelledCounter(
    registers,
    { name: 'acceptor_worker_restarts_total', help: 'Workers replaced, by reason: crash, startup (died before ready), watchdog (event loop stalled), reload.' },
    'reason',
    RESTART_REASONS,
    (r) => s.counters.restarts[r],
  );
  return register;
}
