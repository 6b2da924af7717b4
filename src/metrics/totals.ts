// The workers' counters, kept by the primary so that no cluster-wide counter ever goes down while
// the primary runs. A worker's counters die with it; Prometheus reads a drop as a counter reset and
// rate() goes wrong. So each worker sends a snapshot of its counters with every heartbeat (100 ms)
// and every scrape answer, and a drained worker sends its last one before it exits. Here each
// snapshot adds what is new in it to its worker's slot, so what a worker counted stays in the slot
// whether it lives on or not, and a message that arrives after its exit adds only what is new. A
// worker that dies loses at most what it counted since its last heartbeat.
import { ERROR_REASONS, type Counters, type ErrorReason } from './counters.js';
import { REJECT_REASONS, type RejectReason } from '../admission/busy.js';

/** A snapshot's layout: handled, accepted, rejected by REJECT_REASONS, errors by ERROR_REASONS. */
const HANDLED = 0;
const ACCEPTED = 1;
const REJECTED = 2;
const ERRORS = REJECTED + REJECT_REASONS.length;
const LENGTH = ERRORS + ERROR_REASONS.length;

/** A worker's counters as one array, for its heartbeat. */
export const snapshot = (c: Counters, handled: number): number[] => [handled, c.accepted, ...REJECT_REASONS.map((r) => c.rejected[r]), ...ERROR_REASONS.map((r) => c.errors[r])];

interface Worker {
  slot: number;
}

export class WorkerTotals {
  /** Each worker's latest snapshot (a dead one's too, for a message that arrives after its exit). */
  private readonly last = new WeakMap<Worker, number[]>();
  /** Per slot, what every worker that has held it counted. */
  private readonly slots = new Map<number, number[]>();

  update(w: Worker, counts: number[]): void {
    if (counts.length !== LENGTH) return;
    const prev = this.last.get(w);
    // Messages from one worker arrive in order; the max only keeps a value from ever going back.
    const next = prev ? counts.map((v, i) => Math.max(v, prev[i]!)) : counts;
    this.last.set(w, next);
    const sum = this.slots.get(w.slot) ?? new Array<number>(LENGTH).fill(0);
    next.forEach((v, i) => (sum[i]! += prev ? v - prev[i]! : v));
    this.slots.set(w.slot, sum);
  }

  private sum(i: number, slot?: number): number {
    let n = 0;
    for (const [s, counts] of this.slots) if (slot === undefined || s === slot) n += counts[i]!;
    return n;
  }

  handled(slot: number): number {
    return this.sum(HANDLED, slot);
  }
  accepted(): number {
    return this.sum(ACCEPTED);
  }
  rejected(r: RejectReason): number {
    return this.sum(REJECTED + REJECT_REASONS.indexOf(r));
  }
  errors(r: ErrorReason): number {
    return this.sum(ERRORS + ERROR_REASONS.indexOf(r));
  }
}
