// Event-loop lag reads as lag: on an idle process well under the 50 ms sampling period (which a
// lag measured wrongly reads as), and at least the stall when a handler blocks its loop for 200 ms.
// The idle bound is half the period, not a few ms: with two test files running at once on two
// cores, an idle primary's p90 read 5.15 ms once (Node 24, CI run of 2026-12-02).
import t from 'tap';
import { start, fixture, sleep } from '../helpers/cli.js';
import { get } from '../helpers/http.js';
import { scrape, value } from '../helpers/metrics.js';

t.test('idle: every process reads under half the 50 ms sampling period; a 200 ms block reads at least 0.2 s', async (t) => {
  const acc = await start(['--workers', '2', '--handler', fixture('block.mjs')], { env: { BLOCK_MS: '200' } });
  t.teardown(() => acc.stop('SIGKILL'));
  await scrape(acc.metricsPort); // ends the start-up period (module loading is not idle)
  await sleep(1500);
  const idle = await scrape(acc.metricsPort);
  for (const w of ['primary', '1', '2']) {
    for (const stat of ['min', 'p50', 'p90']) {
      const v = value(idle, `nodejs_eventloop_lag_${stat}_seconds{worker="${w}"}`);
      t.ok(v !== undefined && v < 0.025, `${w} ${stat} ${v === undefined ? 'missing' : (v * 1000).toFixed(2) + ' ms'}`);
    }
  }
  t.equal((await get(acc.port, '/block')).status, 200);
  const after = await scrape(acc.metricsPort);
  const max = Math.max(value(after, 'nodejs_eventloop_lag_max_seconds{worker="1"}') ?? 0, value(after, 'nodejs_eventloop_lag_max_seconds{worker="2"}') ?? 0);
  t.ok(max >= 0.2 && max < 0.5, `the blocked worker's max: ${(max * 1000).toFixed(0)} ms`);
  t.ok((value(after, 'nodejs_eventloop_lag_max_seconds{worker="primary"}') ?? 1) < 0.05, 'the primary was not blocked');
});
