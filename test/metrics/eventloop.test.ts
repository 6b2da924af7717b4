// Event-loop lag reads as lag: under 5 ms on an idle process (not the 50 ms sampling period), and
// at least the stall when a handler blocks its loop for 200 ms.
import t from 'tap';
import { start, fixture, sleep } from '../helpers/cli.js';
import { get } from '../helpers/http.js';
import { scrape, value } from '../helpers/metrics.js';

t.test('idle: every process reads under 5 ms; a 200 ms block reads at least 0.2 s', async (t) => {
  const acc = await start(['--workers', '2', '--handler', fixture('block.mjs')], { env: { BLOCK_MS: '200' } });
  t.teardown(() => acc.stop('SIGKILL'));
  await scrape(acc.metricsPort); // ends the start-up period (module loading is not idle)
  await sleep(1500);
  const idle = await scrape(acc.metricsPort);
  for (const w of ['primary', '1', '2']) {
    for (const stat of ['min', 'p50', 'p90']) {
      const v = value(idle, `nodejs_eventloop_lag_${stat}_seconds{worker="${w}"}`);
      t.ok(v !== undefined && v < 0.005, `${w} ${stat} ${v === undefined ? 'missing' : (v * 1000).toFixed(2) + ' ms'}`);
    }
  }
  t.equal((await get(acc.port, '/block')).status, 200);
  const after = await scrape(acc.metricsPort);
  const max = Math.max(value(after, 'nodejs_eventloop_lag_max_seconds{worker="1"}') ?? 0, value(after, 'nodejs_eventloop_lag_max_seconds{worker="2"}') ?? 0);
  t.ok(max >= 0.2 && max < 0.5, `the blocked worker's max: ${(max * 1000).toFixed(0)} ms`);
  t.ok((value(after, 'nodejs_eventloop_lag_max_seconds{worker="primary"}') ?? 1) < 0.05, 'the primary was not blocked');
});
