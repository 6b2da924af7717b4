// Messages between the primary and its workers over the node:cluster IPC channel. Short keys:
// a hand-off message is sent once per connection. The handler shares the channel (process.send,
// process.on('message')), so every message of the acceptor names its kind under `acceptor`, a key
// a handler's own protocol does not use by accident: the primary ignores anything else. A `t`
// key would collide with many; a handler's `{ acceptor: 'd', n }` was once taken for a close report and
// let admission go past --max-connections.
import type { AcceptorOptions } from '../options.js';

/** How often a worker says it is alive. */
export const HEARTBEAT_MS = 100;
/** Silence after which a worker gets no new connections (it is `stalled`, not yet replaced). */
export const STALL_MS = 400;

/** What a worker is started with (env ACCEPTOR_WORKER_CONFIG, JSON). */
export interface WorkerConfig {
  options: AcceptorOptions;
  slot: number;
  /** The bound address and port, for strategies where the worker listens. */
  address: string;
  port: number;
  /** listen() backlog for strategies where the worker listens. */
  listenBacklog: number;
  /** A listening socket inherited from systemd, for strategies where the worker listens. */
  fd?: number | undefined;
  /** How hand-offs arrive (handoff only). */
  transport: 'ipc' | 'fdpass' | undefined;
}

export type ToWorker =
  /** A connection (the socket travels as the message's handle); `a` = accept time, ms. */
  | { acceptor: 'c'; a: number; k?: number }
  /**
   * Finish in-flight work, close idle connections, exit. `move` (a reload, fdpass): hand idle
   * connections back instead of closing them. A second drain without it (a shutdown during the
   * reload): stop handing back, and close as a shutdown does.
   */
  | { acceptor: 'drain'; move?: true }
  /** Send your metrics, answering with the same id. */
  | { acceptor: 'm'; id: number };

export type FromWorker =
  /** `cap`: the connections its descriptors can hold (worker/descriptors.ts), where it is known. */
  | { acceptor: 'ready'; cap?: number }
  /** The handler could not be loaded: why, in one line; the worker exits next. */
  | { acceptor: 'fail'; error: string }
  /** Heartbeat, for the watchdog; with metrics on, the worker's counters (metrics/totals.ts). */
  | { acceptor: 'hb'; c?: number[]; cap?: number }
  /** `n` handed-off connections have closed (batched per event-loop turn); `k`: their client keys, where the primary counts per client. */
  | { acceptor: 'd'; n: number; k?: number[] }
  /** Metrics answer: prom-client's registry JSON, and the worker's counters. */
  | { acceptor: 'm'; id: number; metrics: unknown; c: number[] };
