// /readyz: whether a load balancer should send this instance new connections. Not ready with no
// ready worker, while draining, or while shedding: the queue above --ready-queue-threshold, or a
// busy answer in the last second. Shedding ends only once the queue is at half the threshold and a
// second has passed without a busy answer, so the answer does not flap at the threshold. Sampled
// on a timer from numbers the accept path keeps anyway: it costs the accept path nothing.
import type { Counters } from '../metrics/counters.js';

/**
 * Refusals that mean "full": a balancer should try another instance. Not `client_limit`: one
 * client's refusals say nothing of room for the others.
 */
const BUSY = ['queue_full', 'queue_timeout', 'no_worker', 'displaced'] as const;
const SAMPLE_MS = 100;
const BUSY_HOLD_MS = 1000;

export interface ReadinessInputs {
  readyWorkers: () => number;
  queueDepth: () => number | undefined;
  counters: Counters;
  threshold: number;
}

export class Readiness {
  private draining = false;
  private shedding = false;
  private lastBusy = -Infinity;
  private busySeen = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly i: ReadinessInputs) {
    this.busySeen = this.busyCount();
    this.timer = setInterval(() => this.sample(), SAMPLE_MS);
    this.timer.unref();
  }

  private busyCount(): number {
    let n = 0;
    for (const r of BUSY) n += this.i.counters.rejected[r];
    return n;
  }

  private sample(now = Date.now()): void {
    const busy = this.busyCount();
    if (busy !== this.busySeen) (this.busySeen = busy), (this.lastBusy = now);
    const depth = this.i.queueDepth() ?? 0;
    const recentBusy = now - this.lastBusy < BUSY_HOLD_MS;
    if (!this.shedding) this.shedding = depth > this.i.threshold || recentBusy;
    else this.shedding = depth > this.i.threshold / 2 || recentBusy;
  }

  /** SIGTERM: not ready from now on, before any connection is refused. */
  drain(): void {
    this.draining = true;
  }

  /** undefined when ready, else why not. */
  reason(): string | undefined {
    this.sample();
    if (this.draining) return 'draining';
    if (this.i.readyWorkers() === 0) return 'no worker ready';
    if (this.shedding) return 'shedding load';
    return undefined;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
