// The workers' counters, kept by the primary so that no cluster-wide counter ever goes down while
// the primary runs. A worker's counters die with it; Prometheus reads a drop as a counter reset and
// rate() goes wrong. So each worker sends a snapshot of its counters with every heartbeat (100 ms)
// and every scrape answer, and a drained worker sends its last one before it exits; here the latest
// snapshot of each live worker is kept, and a retired worker's last one is added to its slot. A
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
  gone: boolean;
}

export class WorkerTotals {
  /** Each worker's latest snapshot (a dead one's too, for a message that arrives after its exit). */
  private readonly last = new WeakMap<Worker, number[]>();
  private readonly live = new Set<Worker>();
  /** Per slot, the sum of the last snapshots of its workers that are gone. */
  private readonly retired = new Map<number, number[]>();

  update(w: Worker, counts: number[]): void {
    if (counts.length !== LENGTH) return;
    const prev = this.last.get(w);
    // Messages from one worker arrive in order; the max only keeps a value from ever going back.
    const next = prev ? counts.map((v, i) => Math.max(v, prev[i]!)) : counts.slice();
    this.last.set(w, next);
    if (!w.gone) this.live.add(w);
    else if (prev) this.addRetired(w.slot, next.map((v, i) => v - prev[i]!));
    else this.addRetired(w.slot, next);
  }

  /** `w` has exited: what it counted stays, in its slot. */
  retire(w: Worker): void {
    if (!this.live.delete(w)) return;
    this.addRetired(w.slot, this.last.get(w)!);
  }

  private addRetired(slot: number, counts: number[]): void {
    const sum = this.retired.get(slot) ?? new Array<number>(LENGTH).fill(0);
    for (let i = 0; i < LENGTH; i++) sum[i]! += counts[i]!;
    this.retired.set(slot, sum);
  }

  private sum(i: number, slot?: number): number {
    let n = 0;
    for (const w of this.live) if (slot === undefined || w.slot === slot) n += this.last.get(w)![i]!;
    for (const [s, counts] of this.retired) if (slot === undefined || s === slot) n += counts[i]!;
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
