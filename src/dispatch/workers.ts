// A worker as the dispatcher sees it: the record the pool keeps for each process, and what the
// dispatcher reads of the pool. Here, below both, so the imports run one way: primary → dispatch.
import type { Worker } from 'node:cluster';
import type { RestartReason } from '../metrics/counters.js';
import type { KeyCounts } from '../admission/clients.js';

export type WorkerState = 'starting' | 'ready' | 'stalled' | 'draining';

export interface WorkerRecord {
  slot: number;
  worker: Worker;
  state: WorkerState;
  /** Connections handed to it and not yet reported closed (handoff), or reported open (others). */
  active: number;
  /** Of those, ipc sends not completed yet (handoff): not lost if it dies now. */
  unsent: number;
  /** The hand-off transport's own state for this worker (fdpass: its channel and outbox). */
  link?: unknown;
  startedAt: number;
  readyAt: number;
  lastBeat: number;
  /** When it was last marked stalled; connections stop waiting for it --stall-timeout later. */
  stalledAt: number;
  /** Stalled for --stall-timeout: nobody waits for it any more. */
  stallExpired: boolean;
  /** Set once it has exited: late callbacks use it to tell. */
  gone: boolean;
  /** Why it was told to stop, if it was (a planned exit is not a crash). */
  retiring?: RestartReason | 'shutdown';
  /** A reload's new worker: if it dies before ready, the old one keeps the slot; no replacement. */
  candidate: boolean;
  /** The connections its descriptors can hold, by its own count (Infinity until told). */
  capacity: number;
  /** What it holds per client (--max-connections-per-client). */
  keys?: KeyCounts;
  /** Told to hand its idle connections back at its drain (a reload, fdpass). */
  handingBack?: boolean;
  /** Killed at the end of --drain-timeout: what it still held is counted `drain_timeout`. */
  drainTimedOut?: boolean;
  onReady?: () => void;
  onEarlyExit?: () => void;
}

/** What the dispatcher reads of the pool (primary/pool.ts). */
export interface Workers {
  /** Ready workers, by slot. */
  readonly ready: WorkerRecord[];
  /** Workers that can take connections now or soon (pool.ts says which). */
  readonly responsive: number;
  /** The worker gets no more connections (its channel failed). */
  detach(rec: WorkerRecord): void;
}
