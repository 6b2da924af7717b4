// Wedged workers: the primary stops handing them connections, tells clients busy, and the
// watchdog replaces them.
import t from 'tap';
import { start, fixture, sleep } from '../helpers/cli.js';
import { rawRequest } from '../helpers/http.js';
import { read } from '../helpers/metrics.js';

t.test('every worker wedged: new connections told busy within 500ms; watchdog replaces them', async (t) => {
  const acc = await start(['--workers', '2', '--watchdog', '2s', '--handler', fixture('block-all.mjs')], { env: { BLOCK_MS: '20000' } });
  t.teardown(() => acc.stop('SIGKILL'));
  // One request per worker wedges both (least-loaded hand-off spreads them).
  const wedging = [rawRequest(acc.port), rawRequest(acc.port)];
  await Promise.all(wedging.map((w) => w.connected));
  await acc.waitFor((l) => l.msg === 'worker stalled: no new connections for it');
  await sleep(600);
  const probes = await Promise.all(Array.from({ length: 5 }, () => rawRequest(acc.port).response));
  for (const p of probes) {
    t.equal(p.status, 503, 'told busy');
    t.ok(p.ms < 500, `within 500ms (${p.ms}ms)`);
  }
  t.comment(`figure: every worker wedged: busy answers in ${Math.min(...probes.map((p) => p.ms))}–${Math.max(...probes.map((p) => p.ms))} ms`);
  t.ok((await read(acc.metricsPort, 'acceptor_connections_rejected_total{reason="no_worker"}')) >= 5, 'counted as no_worker');
  const replaced = await acc.waitFor((l) => l.msg === 'worker event loop stalled; replacing it', 10_000);
  t.ok(Number(replaced.stalledMs) >= 2000, 'after the watchdog deadline');
  await acc.waitFor((l) => l.msg === 'worker ready' && acc.lines.indexOf(l) > acc.lines.indexOf(replaced), 10_000);
  t.ok((await read(acc.metricsPort, 'acceptor_worker_restarts_total{reason="watchdog"}')) >= 1, 'restart counted with reason watchdog');
  const lost = await Promise.all(wedging.map((w) => w.response));
  t.same(lost.map((r) => r.status), [0, 0], "the wedged workers' own connections are lost with them");
});
