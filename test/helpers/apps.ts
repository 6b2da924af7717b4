// The battery every app runs through, whatever framework wrote it and however it starts
// (test/fixtures/apps/*.mjs: GET /, POST /echo, /boom, /slow?ms=): served, answered, admitted
// exactly in front of it, counted, reloaded and stopped with requests in flight.
import type { Test } from 'tap';
import { fixture, start, until, workerPids, type Running } from './cli.js';
import { get, send } from './http.js';
import { scrape, untilValue, value } from './metrics.js';

export interface AppCase {
  name: string;
  file: string;
  /** The body of GET /. */
  root: string;
  /** The app has a SIGTERM listener that prints `app: SIGTERM`, then `app: closed` once closed. */
  shutdown: boolean;
}

const appLines = (acc: Running, text: string): number => acc.lines.filter((l) => l.raw === true && l.msg === text).length;

export async function battery(t: Test, c: AppCase): Promise<void> {
  // 1 worker × 1 slot, and 1 may wait: the third concurrent request is told busy.
  const acc = await start(['--workers', '1', '--max-connections', '1', '--backlog', '1', fixture(`apps/${c.file}`)]);
  t.teardown(() => acc.stop('SIGKILL'));
  const [pid] = workerPids(acc);

  t.same(await get(acc.port, '/').then((r) => [r.status, r.body]), [200, c.root], 'GET /');
  const json = { a: [1, 'two', { three: 3 }], ünïcode: '✓' };
  const echoed = await send(acc.port, 'POST', '/echo', JSON.stringify(json), { 'content-type': 'application/json' });
  t.same([echoed.status, JSON.parse(echoed.body)], [200, json], 'POST /echo with a JSON body');
  t.equal((await get(acc.port, '/nope')).status, 404, 'an unknown path: 404');
  t.equal((await get(acc.port, '/boom')).status, 500, "a thrown error: the app's own 500");
  t.same(await get(acc.port, '/').then((r) => [r.status, r.body]), [200, c.root], 'and the worker serves on');
  t.same(workerPids(acc), [pid], 'the same worker');

  // Admission in front of the app: one holds the slot, one waits, the third is told busy at once.
  const slow = (): Promise<{ status: number; body: string }> => get(acc.port, '/slow?ms=1500');
  const a = slow();
  await untilValue(acc.metricsPort, 'acceptor_worker_connections{worker="1"}', 1);
  const b = slow();
  await untilValue(acc.metricsPort, 'acceptor_queue_depth', 1);
  const busy = await get(acc.port, '/');
  t.same([busy.status, busy.headers['retry-after'], busy.body], [503, '1', 'server busy\n'], 'the third: 503 with Retry-After');
  t.same(await Promise.all([a, b]).then((rs) => rs.map((r) => [r.status, r.body])), [[200, 'slow\n'], [200, 'slow\n']], 'the first two served');

  // Every connection accounted for: 7 served, 1 refused, nothing else.
  const m = await scrape(acc.metricsPort);
  t.same(
    [value(m, 'acceptor_connections_accepted_total'), value(m, 'acceptor_connections_handled_total{worker="1"}'), value(m, 'acceptor_connections_rejected_total{reason="queue_full"}'), value(m, 'acceptor_connection_errors_total{reason="worker_exit"}')],
    [8, 7, 1, 0],
    'accepted 8 = handled 7 + rejected 1',
  );

  // A reload with a request in flight: it finishes, the app's own shutdown runs in the old worker.
  const inReload = slow();
  await untilValue(acc.metricsPort, 'acceptor_worker_connections{worker="1"}', 1);
  const mark = acc.lines.length;
  acc.proc.kill('SIGHUP');
  t.same(await inReload.then((r) => [r.status, r.body]), [200, 'slow\n'], 'the request in flight at the reload');
  await acc.waitFor((l) => l.msg === 'reload done', 15_000, mark);
  const [fresh] = workerPids(acc);
  t.not(fresh, pid, 'a new worker');
  t.same(await get(acc.port, '/').then((r) => [r.status, r.body]), [200, c.root], 'serves');
  if (c.shutdown) await until(() => appLines(acc, 'app: closed') === 1);
  t.equal(appLines(acc, 'app: SIGTERM'), c.shutdown ? 1 : 0, "the old worker ran the app's SIGTERM listener");

  // SIGTERM with a request in flight: it finishes, the app closes, the acceptor exits 0.
  const inStop = slow();
  await untilValue(acc.metricsPort, 'acceptor_worker_connections{worker="1"}', 1);
  acc.proc.kill('SIGTERM');
  t.same(await inStop.then((r) => [r.status, r.body]), [200, 'slow\n'], 'the request in flight at SIGTERM');
  t.same(await acc.exited, { code: 0, signal: null }, 'exit 0');
  t.same([appLines(acc, 'app: SIGTERM'), appLines(acc, 'app: closed')], c.shutdown ? [2, 2] : [0, 0], "the app's shutdown ran, and its server closed");
}
