// One cluster-wide scrape that always answers. prom-client's AggregatorRegistry.clusterMetrics()
// fails the whole scrape when one worker is slow (5 s timeout) and leaves the primary out; here
// the primary asks each worker itself, waits at most `timeoutMs`, merges what came back with its
// own registry, and reports who was missing.
import { AggregatorRegistry, Counter, Gauge, type Registry } from 'prom-client';
import type { Pool, WorkerRecord } from '../primary/pool.js';
import type { FromWorker } from '../worker/protocol.js';
import { LABEL_WORKER } from './names.js';

/** Answers later than this are left out of the scrape (and the worker is flagged). */
export const SCRAPE_TIMEOUT_MS = 500;

type metric = Awaited<ReturnType<Registry['getMetricsAsJSON']>>[number];

export class ClusterScrape {
  private seq = 0;
  private waiting = new Map<number, Map<WorkerRecord, (m: metric[]) => void>>();
  private readonly up: Gauge;
  private readonly timeouts: Counter;

  constructor(
    private readonly pool: Pool,
    private readonly primary: Registry,
    private readonly timeoutMs = SCRAPE_TIMEOUT_MS,
  ) {
    const registers = [primary];
    this.up = new Gauge({ name: 'acceptor_scrape_worker_up', help: 'Whether the worker answered the last /metrics scrape in time (1) or not (0).', labelNames: [LABEL_WORKER], registers });
    this.timeouts = new Counter({ name: 'acceptor_scrape_worker_timeouts_total', help: 'Scrapes a worker did not answer in time; its series were missing from them.', labelNames: [LABEL_WORKER], registers });
  }

  /** The worker's answer to a metrics request. */
  onMessage(rec: WorkerRecord, msg: Extract<FromWorker, { acceptor: 'm' }>): void {
    this.waiting.get(msg.id)?.get(rec)?.(msg.metrics as metric[]);
  }

  private ask(rec: WorkerRecord, id: number, pending: Map<WorkerRecord, (m: metric[]) => void>): Promise<metric[] | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), this.timeoutMs);
      pending.set(rec, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      try {
        rec.worker.send({ acceptor: 'm', id });
      } catch {
        clearTimeout(timer);
        resolve(undefined);
      }
    });
  }

  async text(): Promise<string> {
    const id = ++this.seq;
    const pending = new Map<WorkerRecord, (m: metric[]) => void>();
    this.waiting.set(id, pending);
    // Starting workers have nothing to report yet; draining ones still serve.
    const asked = [...this.pool.records].filter((r) => r.state !== 'starting');
    const answers = await Promise.all(asked.map((r) => this.ask(r, id, pending)));
    this.waiting.delete(id);

    this.up.reset();
    const bySlot = new Map<number, boolean>();
    asked.forEach((r, i) => bySlot.set(r.slot, (bySlot.get(r.slot) ?? true) && answers[i] !== undefined));
    for (const [slot, ok] of bySlot) {
      this.up.set({ worker: String(slot) }, ok ? 1 : 0);
      if (!ok) this.timeouts.inc({ worker: String(slot) });
    }
    const parts = [await this.primary.getMetricsAsJSON(), ...answers.filter((a): a is metric[] => a !== undefined)];
    return AggregatorRegistry.aggregate(parts).metrics();
  }
}
