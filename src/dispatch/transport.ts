// How accepted connections reach a worker. `ipc` is Node's own channel (worker.send with a
// handle: one descriptor in flight per worker); `fdpass` is the native addon (batched
// SCM_RIGHTS over a socket pair per worker, accepting in batches too). Admission does not
// depend on which: the dispatcher counts a slot when it assigns a connection, whatever carries it.
import type { Server } from 'node:net';
import type { Waiting } from '../admission/queue.js';
import type { WorkerRecord } from './workers.js';
import { loadFdpass } from '../native/fdpass.js';
import { OptionError, type TransportOption } from '../options.js';

export type TransportName = 'ipc' | 'fdpass';

/** What a transport tells the dispatcher. */
export interface Sink<C> {
  /** One accepted connection, `at` = accept time (clock()), `key` its client (admission/client.ts; 0 unknown). */
  admit(conn: C, at: number, key?: number): void;
  /** End of one accept wake-up: time to send what was assigned. */
  batchDone(): void;
  acceptFailed(n: number): void;
  /** `n` connections handed to `w` have closed: their slots are free. `keys`: theirs, where told by key. */
  closed(w: WorkerRecord, n: number, keys?: ArrayLike<number>): void;
  /** Hand-offs that never reached `w` (it died first), oldest first: they go to the front again. */
  undelivered(w: WorkerRecord, back: Waiting<C>[]): void;
  /** Idle connections `w` handed back at its drain (their slots leave it); `lost`: dropped in transit. */
  moved(w: WorkerRecord, conns: C[], lost: number, keys?: ArrayLike<number>): void;
  /** Hand-offs delivered to a worker already counted out: lost with it. */
  lost(n: number): void;
  /** An ipc send has ended: one fewer in flight, so waiting connections may go now. */
  sent(): void;
}

/** Set up before a worker is forked: a descriptor it inherits (as fd 4) and the transport's state. */
export interface ForkLink {
  fd: number;
  attach(rec: WorkerRecord): void;
}

export interface Transport<C = unknown> {
  /** Takes over accepting on `server`. */
  start(server: Server, sink: Sink<C>): void;
  /** Hands `conn` to `w`, now or at the next flush(), with its client key. */
  assign(w: WorkerRecord, conn: C, at: number, key: number): void;
  /** The peer address of a connection the primary holds, for a log line. */
  peer(conn: C): string | undefined;
  flush(): void;
  /** Reads the close reports not yet read (fdpass reads them lazily, at the next accept batch): before a scrape of per-client counts. */
  settle?(): void;
  /** Whether connections wait in the queue for a slot (then a freed slot must be heard at once). */
  slotsWanted(waiting: boolean): void;
  /** Tells `conn` busy (HTTP 503, the tcp busy line, or a reset) and closes it. */
  refuse(conn: C): void;
  prepareFork(): ForkLink | undefined;
  /**
   * `w` is draining and may hand its idle connections back (fdpass): true if this transport can
   * carry them, and from now on each is heard at once.
   */
  movable(w: WorkerRecord): boolean;
  /** `w` has exited: what it never received (oldest first), the closes it reported last, and what it handed back. */
  detach(w: WorkerRecord): Detached<C>;
  stop(): void;
}

export interface Detached<C> {
  back: Waiting<C>[];
  closed: number;
  /** The client keys of those closes, where told by key. */
  closedKeys?: ArrayLike<number>;
  moved: C[];
  movedKeys?: ArrayLike<number>;
  movedLost: number;
}

/** The worker's end of the fdpass channel, after stdin/out/err and Node's IPC channel. */
export const CHANNEL_FD = 4;

/**
 * `auto`: fdpass where the addon loads, else ipc with `warning` set. An explicit `fdpass` that
 * cannot load is an error (exit 2).
 */
export function chooseTransport(option: TransportOption): { name: TransportName; warning?: string } {
  if (option === 'ipc') return { name: 'ipc' };
  const loaded = loadFdpass();
  if ('addon' in loaded) return { name: 'fdpass' };
  if (option === 'fdpass') throw new OptionError('transport', `invalid --transport "fdpass": ${loaded.error}`);
  return { name: 'ipc', warning: `fdpass transport unavailable, using ipc: ${loaded.error}` };
}

/**
 * What the primary may hold at once besides its queue (handoff): connections accepted in one batch
 * before each is handed on or refused, and refused ones lingering until their client closes. Past
 * these the accept loop waits a turn and refusals close at once, so the descriptors the limit keeps in reserve stay
 * free for the primary's own endpoints (/healthz, /readyz, /metrics) and the accept itself.
 */
export interface PrimaryBudget {
  acceptBatch: number;
  maxLingering: number;
}

/** No limit known: the accept loop's own batch, and refusals all linger. */
export const UNBOUNDED: PrimaryBudget = { acceptBatch: 1024, maxLingering: Number.MAX_SAFE_INTEGER };
