// Overload: far more clients than workers × max-connections + backlog, for 10 s. Every attempt
// is answered 200 or busy, none hangs past its timeout, the books balance, memory stays bounded.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { start, TRANSPORTS } from '../helpers/cli.js';
import { scrape, value } from '../helpers/metrics.js';
import { storm } from '../../bench/load/storm.js';

const CPU = fileURLToPath(new URL('../../bench/handlers/cpu.mjs', import.meta.url));
const rss = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

for (const transport of TRANSPORTS) {
  t.test(`${transport}: 10 s at 150 clients against 2×4 slots + 16 waiting`, async (t) => {
    const acc = await start(['--transport', transport, '--workers', '2', '--max-connections', '4', '--backlog', '16', '--handler', CPU, '--host', '127.0.0.1'], { env: { CPU_MS: '2' } });
    t.teardown(() => acc.stop('SIGKILL'));
    const before = await scrape(acc.metricsPort);
    let peak = rss(acc.proc.pid!);
    const watch = setInterval(() => (peak = Math.max(peak, rss(acc.proc.pid!))), 200);
    const r = await storm({ host: '127.0.0.1', port: acc.port, mode: 'http', concurrency: 150, durationMs: 10_000, timeoutMs: 10_000 });
    clearInterval(watch);
    t.same(r.errors, { refused: 0, reset: 0, timeout: 0, other: 0 }, 'no attempt failed or hung past its timeout');
    t.equal(r.ok + r.busy, r.attempts, `every attempt answered: ${r.ok} served + ${r.busy} busy = ${r.attempts}`);
    t.ok(r.ok > 0 && r.busy > 0, 'both served and refused');
    await new Promise((res) => setTimeout(res, 300));
    const after = await scrape(acc.metricsPort);
    const d = (s: string): number => value(after, s)! - value(before, s)!;
    t.equal(d('acceptor_connections_accepted_total'), r.connected, 'the server accepted every connection the clients made');
    const rejected = ['queue_full', 'queue_timeout', 'no_worker', 'shutting_down'].reduce((n, reason) => n + d(`acceptor_connections_rejected_total{reason="${reason}"}`), 0);
    t.equal(rejected, r.busy, 'and told busy exactly those the clients saw as busy');
    t.equal(value(after, 'acceptor_queue_depth'), 0, 'queue empty afterwards');
    t.ok(peak < 256 * 2 ** 20, `primary RSS peaked at ${(peak / 2 ** 20).toFixed(0)} MiB (bound 256 MiB)`);
    t.comment(`figure: ${transport} overload 10 s, 150 clients vs 8 slots + 16 waiting: ${r.attempts} attempts, ${r.ok} served, ${r.busy} busy, ${Object.values(r.errors).reduce((a, b) => a + b, 0)} errors; primary RSS peak ${(peak / 2 ** 20).toFixed(0)} MiB`);
  });
}
