// Scrape /metrics and read values out of the Prometheus text format.
import { get } from './http.js';
import { until } from './cli.js';

export async function scrape(port: number, token?: string): Promise<string> {
  const r = await get(port, '/metrics', '127.0.0.1', token ? { authorization: `Bearer ${token}` } : {});
  if (r.status !== 200) throw new Error(`scrape: HTTP ${r.status}`);
  return r.body;
}

/** Value of the sample `series` (e.g. `acceptor_connections_rejected_total{reason="queue_full"}`), or undefined. */
export function value(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

/** Connections each worker holds (`acceptor_worker_connections`), for workers 1..n. */
export const workerConnections = (text: string, n: number): number[] =>
  Array.from({ length: n }, (_, i) => value(text, `acceptor_worker_connections{worker="${i + 1}"}`) ?? NaN);

export async function read(port: number, series: string): Promise<number> {
  const v = value(await scrape(port), series);
  if (v === undefined) throw new Error(`no sample ${series}`);
  return v;
}

/** Polls until `series` reads `expected` (a state such as "the worker holds it"), or fails after ms. */
export async function untilValue(port: number, series: string, expected: number, ms = 10_000): Promise<void> {
  await until(async () => value(await scrape(port), series) === expected, ms);
}
