// Event-loop lag, sampled cheaply and reported as lag. prom-client's collector reports Node's
// histogram of timer intervals as they are, so with a 50 ms sampling period an idle process read
// 50 ms of "lag". Here each sample is what the loop did in one period:
// - an interval close to the period: the timer's own delay (interval − period), about 0 when idle
//   and small for a busy but responsive loop;
// - an interval of two periods or more (a stall): the time the loop was busy in it (the interval
//   minus its idle time), which is the stall itself, not the stall minus up to one period.
// Same series names as prom-client's, so dashboards and alerts are unchanged.
import { performance } from 'node:perf_hooks';
import { Gauge, type Registry } from 'prom-client';

const NAME = 'nodejs_eventloop_lag';
const STATS = ['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99'] as const;

export function eventLoopLag(register: Registry, labels: Record<string, string>, periodMs: number): void {
  register.removeSingleMetric(`${NAME}_seconds`);
  for (const s of STATS) register.removeSingleMetric(`${NAME}_${s}_seconds`);

  let samples: number[] = [];
  let last = performance.now();
  let lastIdle = performance.eventLoopUtilization().idle;
  setInterval(() => {
    const now = performance.now();
    const idle = performance.eventLoopUtilization().idle;
    const interval = now - last;
    samples.push(interval < 2 * periodMs ? Math.max(0, interval - periodMs) : Math.max(0, interval - (idle - lastIdle)));
    last = now;
    lastIdle = idle;
  }, periodMs).unref();

  const registers = [register];
  const labelNames = Object.keys(labels);
  const stats: Record<(typeof STATS)[number], number> = { min: 0, max: 0, mean: 0, stddev: 0, p50: 0, p90: 0, p99: 0 };
  const gauges = STATS.map((s) => new Gauge({ name: `${NAME}_${s}_seconds`, help: `Event-loop lag over the last scrape period: ${s}.`, labelNames, registers }));
  // The first gauge's collect computes every statistic once per scrape and starts a new period.
  const compute = (): void => {
    const v = samples.sort((a, b) => a - b);
    samples = [];
    const n = v.length;
    const at = (p: number): number => (n ? v[Math.min(n - 1, Math.ceil((p / 100) * n) - 1)]! : 0);
    const mean = n ? v.reduce((a, b) => a + b, 0) / n : 0;
    Object.assign(stats, { min: v[0] ?? 0, max: v[n - 1] ?? 0, mean, stddev: n ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / n) : 0, p50: at(50), p90: at(90), p99: at(99) });
    STATS.forEach((s, i) => gauges[i]!.set(labels, stats[s] / 1000));
  };
  (gauges[0] as unknown as { collect: () => void }).collect = compute;
  new Gauge({
    name: `${NAME}_seconds`,
    help: 'Lag of the event loop now: how long a setImmediate takes to run, measured at scrape.',
    labelNames,
    registers,
    async collect() {
      const t0 = performance.now();
      await new Promise((r) => setImmediate(r));
      this.set(labels, (performance.now() - t0) / 1000);
    },
  });
}
