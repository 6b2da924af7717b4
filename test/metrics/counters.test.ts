// Counters move exactly: N connections → accepted +N; each refusal → rejected{reason} +1.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { start, fixture, until, sleep, workerPids, openFds, startThenBreakHandler, TRANSPORTS } from '../helpers/cli.js';
import { rawClient, rawRequest, get, underLoad } from '../helpers/http.js';
import { REJECT_REASONS } from '../../src/admission/busy.js';
import { scrape, value, read, untilValue } from '../helpers/metrics.js';

const REJ = (reason: string): string => `acceptor_connections_rejected_total{reason="${reason}"}`;
const ACC = 'acceptor_connections_accepted_total';

const DISPATCHED = 'acceptor_dispatch_duration_seconds_count';
// The hand-off latency runs from the primary's accept to the worker's receipt: on an idle
// acceptor every one is far under 10 s (a sum of the two clocks, or one left out, is not).
const DISPATCHED_IN_10S = 'acceptor_dispatch_duration_seconds_bucket{le="10"}';

for (const transport of TRANSPORTS) t.test(`${transport}: accepted moves by exactly N; each hand-off is timed once`, async (t) => {
  const acc = await start(['--workers', '2', '--transport', transport]);
  t.teardown(() => acc.stop('SIGKILL'));
  const before = await scrape(acc.metricsPort);
  const N = 50;
  for (let i = 0; i < N; i++) t.equal((await get(acc.port)).status, 200);
  const text = await scrape(acc.metricsPort);
  const delta = (series: string): number => value(text, series)! - value(before, series)!;
  t.equal(delta(ACC), N, `accepted +${N}`);
  const handled = value(text, 'acceptor_connections_handled_total{worker="1"}')! + value(text, 'acceptor_connections_handled_total{worker="2"}')!;
  t.equal(handled, value(before, ACC)! + N, 'every accepted connection was handled by a worker');
  t.equal(delta(DISPATCHED), N, `${N} hand-offs timed`);
  t.equal(delta(DISPATCHED_IN_10S), N, 'each within 10 s of its accept');
});

t.test('queue_full: each refusal +1, accepted counts it too; queue depth rises and falls', async (t) => {
  const holdFile = join(t.testdir(), 'release');
  const acc = await start(['--workers', '1', '--max-connections', '1', '--backlog', '2', '--handler', fixture('hold.mjs')], { env: { HOLD_FILE: holdFile } });
  t.teardown(() => acc.stop('SIGKILL'));
  const before = await scrape(acc.metricsPort);
  const conns = [];
  for (let i = 0; i < 3; i++) {
    const c = rawRequest(acc.port);
    await c.connected;
    conns.push(c);
  }
  await until(async () => value(await scrape(acc.metricsPort), 'acceptor_queue_depth') === 2);
  const refused = [];
  for (let i = 0; i < 4; i++) refused.push(await rawRequest(acc.port).response);
  t.same(refused.map((r) => r.status), [503, 503, 503, 503]);
  const during = await scrape(acc.metricsPort);
  t.equal(value(during, REJ('queue_full'))! - value(before, REJ('queue_full'))!, 4, 'queue_full +4');
  t.equal(value(during, ACC)! - value(before, ACC)!, 7, 'accepted +7 (3 admitted, 4 refused)');
  t.equal(value(during, 'acceptor_queue_depth'), 2, 'two waiting');
  t.equal(value(during, 'acceptor_queue_capacity'), 2);
  t.equal(value(during, 'acceptor_worker_connections{worker="1"}'), 1, 'one open on the worker');
  writeFileSync(holdFile, '');
  await Promise.all(conns.map((c) => c.response));
  await until(async () => value(await scrape(acc.metricsPort), 'acceptor_queue_depth') === 0);
  const after = await scrape(acc.metricsPort);
  t.equal(value(after, 'acceptor_queue_depth'), 0, 'queue drained');
  t.equal(value(after, REJ('queue_full'))! - value(before, REJ('queue_full'))!, 4, 'no further refusals');
  const h = value(after, 'acceptor_dispatch_duration_seconds_count')! - value(before, 'acceptor_dispatch_duration_seconds_count')!;
  t.equal(h, 3, 'three hand-offs timed');
});

t.test('queue_timeout +1 per expired wait', async (t) => {
  const holdFile = join(t.testdir(), 'release');
  const acc = await start(['--workers', '1', '--max-connections', '1', '--backlog', '5', '--queue-timeout', '200ms', '--handler', fixture('hold.mjs')], { env: { HOLD_FILE: holdFile } });
  t.teardown(() => acc.stop('SIGKILL'));
  const b = await read(acc.metricsPort, REJ('queue_timeout'));
  const held = rawRequest(acc.port);
  await held.connected;
  const waits = [rawRequest(acc.port), rawRequest(acc.port)];
  t.same((await Promise.all(waits.map((w) => w.response))).map((r) => r.status), [503, 503]);
  t.equal((await read(acc.metricsPort, REJ('queue_timeout'))) - b, 2);
  writeFileSync(holdFile, '');
  await held.response;
});

t.test('worker_full +1 where workers accept (round-robin)', async (t) => {
  const holdFile = join(t.testdir(), 'release');
  const acc = await start(['--strategy', 'round-robin', '--host', '127.0.0.1', '--workers', '1', '--max-connections', '1', '--handler', fixture('hold.mjs')], { env: { HOLD_FILE: holdFile } });
  t.teardown(() => acc.stop('SIGKILL'));
  const before = await scrape(acc.metricsPort);
  const held = rawRequest(acc.port);
  await held.connected;
  await untilValue(acc.metricsPort, 'acceptor_worker_connections{worker="1"}', 1);
  t.equal((await rawRequest(acc.port).response).status, 503);
  const after = await scrape(acc.metricsPort);
  t.equal(value(after, REJ('worker_full'))! - value(before, REJ('worker_full'))!, 1, 'worker_full +1');
  t.equal(value(after, ACC)! - value(before, ACC)!, 2, 'the worker accepted both');
  t.equal(value(after, 'acceptor_queue_depth'), undefined, 'no acceptor queue in this strategy');
  writeFileSync(holdFile, '');
  await held.response;
});

t.test('no_worker +1 while every worker is down', async (t) => {
  // A handler that loads at first, then stops loading: the worker that dies is not replaced at
  // once (its replacements fail at load, with backoff), so for a while no worker can take anything.
  const { acc, mark } = await startThenBreakHandler(t.testdir());
  t.teardown(() => acc.stop('SIGKILL'));
  // Wait for a restart delay long enough to tell "at once" from "at the next failed start",
  // which would also tell it busy (the queue is flushed when a start fails with nobody up).
  const died = await acc.waitFor((l) => l.msg === 'worker died' && l.reason === 'startup' && Number(l.restartInMs) >= 800, 15_000, mark);
  const b = await read(acc.metricsPort, REJ('no_worker'));
  const r = await rawRequest(acc.port).response;
  t.equal(r.status, 503);
  t.ok(r.ms < Number(died.restartInMs) / 2, `told at once (${Math.round(r.ms)} ms), not queued until the next start (in ${String(died.restartInMs)} ms)`);
  t.equal((await read(acc.metricsPort, REJ('no_worker'))) - b, 1, 'no_worker +1');
  t.equal(await read(acc.metricsPort, 'acceptor_worker_restarts_total{reason="crash"}'), 1, 'the killed one counted as a crash');
  t.ok((await read(acc.metricsPort, 'acceptor_worker_restarts_total{reason="startup"}')) >= 1, 'its failing replacements as startup');
});

t.test('shutting_down +1 for a connection during the drain', async (t) => {
  const holdFile = join(t.testdir(), 'release');
  const acc = await start(['--workers', '1', '--handler', fixture('hold.mjs')], { env: { HOLD_FILE: holdFile } });
  t.teardown(() => acc.stop('SIGKILL'));
  const b = await read(acc.metricsPort, REJ('shutting_down'));
  const held = rawRequest(acc.port);
  await held.connected;
  await untilValue(acc.metricsPort, 'acceptor_worker_connections{worker="1"}', 1);
  acc.proc.kill('SIGTERM');
  await acc.waitFor((l) => l.msg === 'shutting down: draining');
  t.equal((await rawRequest(acc.port).response).status, 503);
  t.equal((await read(acc.metricsPort, REJ('shutting_down'))) - b, 1, 'shutting_down +1');
  writeFileSync(holdFile, '');
  t.equal((await held.response).status, 200);
  t.equal((await acc.exited).code, 0);
});

t.test('shutting_down for every connection still waiting in the queue at SIGTERM, told at once', async (t) => {
  const holdFile = join(t.testdir(), 'release');
  const acc = await start(['--workers', '1', '--max-connections', '1', '--backlog', '3', '--handler', fixture('hold.mjs')], { env: { HOLD_FILE: holdFile } });
  t.teardown(() => acc.stop('SIGKILL'));
  const b = await read(acc.metricsPort, REJ('shutting_down'));
  const held = rawRequest(acc.port);
  await held.connected;
  await untilValue(acc.metricsPort, 'acceptor_worker_connections{worker="1"}', 1);
  const waiting = [rawRequest(acc.port), rawRequest(acc.port)];
  await untilValue(acc.metricsPort, 'acceptor_queue_depth', 2);
  acc.proc.kill('SIGTERM');
  // Told busy while the held one is still held: the drain does not make them wait for it.
  const told = await Promise.all(waiting.map((w) => w.response));
  t.same(told.map((r) => r.status), [503, 503], 'both waiting told busy');
  t.equal((await read(acc.metricsPort, REJ('shutting_down'))) - b, 2, 'shutting_down +2');
  writeFileSync(holdFile, '');
  t.equal((await held.response).status, 200, 'the one in the slot is served');
  t.equal((await acc.exited).code, 0);
});

t.test('worker_exit counts connections lost with a killed worker', async (t) => {
  const holdFile = join(t.testdir(), 'never');
  const acc = await start(['--workers', '1', '--handler', fixture('hold.mjs')], { env: { HOLD_FILE: holdFile } });
  t.teardown(() => acc.stop('SIGKILL'));
  const held = [rawRequest(acc.port), rawRequest(acc.port)];
  await Promise.all(held.map((h) => h.connected));
  await until(async () => value(await scrape(acc.metricsPort), 'acceptor_worker_connections{worker="1"}') === 2);
  const mark = acc.lines.length;
  const pid = Number(acc.lines.find((l) => l.msg === 'worker ready')!.workerPid);
  process.kill(pid, 'SIGKILL');
  await acc.waitFor((l) => l.msg === 'worker ready', 10_000, mark);
  const text = await scrape(acc.metricsPort);
  t.equal(value(text, 'acceptor_connection_errors_total{reason="worker_exit"}'), 2, 'both lost connections counted');
  t.equal(value(text, 'acceptor_worker_restarts_total{reason="crash"}'), 1);
  await Promise.all(held.map((h) => h.response));
});

// The over-count: connections the worker had closed, whose close reports still waited to
// be read when its exit was handled, were counted lost with it. Made certain here: the primary is
// stopped (SIGSTOP) while the worker serves and closes M of its K + M connections and reports
// them, then the worker is killed; only then does the primary run again, finding both the exit and
// the reports. Exactly the K it still held open are lost.
for (const transport of TRANSPORTS) t.test(`${transport}: worker_exit is exactly the connections the worker still held open; the ones it had just closed are not counted`, async (t) => {
  const dir = t.testdir();
  const acc = await start(['--workers', '1', '--transport', transport, '--handler', fixture('hold.mjs'), '--watchdog', '0'], { env: { HOLD_DIR: dir } });
  t.teardown(() => (process.kill(acc.proc.pid!, 'SIGCONT'), acc.stop('SIGKILL')));
  const [pid] = workerPids(acc);
  const base = openFds(pid!);
  const K = 3;
  const M = 5;
  const held = Array.from({ length: K }, (_, i) => rawRequest(acc.port, `/held${i}`));
  const done = Array.from({ length: M }, (_, i) => rawRequest(acc.port, `/done${i}`));
  await until(async () => value(await scrape(acc.metricsPort), 'acceptor_worker_connections{worker="1"}') === K + M);
  const before = await read(acc.metricsPort, 'acceptor_connection_errors_total{reason="worker_exit"}');
  process.kill(acc.proc.pid!, 'SIGSTOP');
  for (let i = 0; i < M; i++) writeFileSync(join(dir, `done${i}`), '');
  t.same((await Promise.all(done.map((d) => d.response))).map((r) => r.status), Array(M).fill(200), 'the M answered');
  // The worker has closed them (its descriptors say so) and reported it in the same loop turn.
  await until(() => openFds(pid!) === base + K);
  await sleep(100);
  process.kill(pid!, 'SIGKILL');
  await sleep(100);
  process.kill(acc.proc.pid!, 'SIGCONT');
  t.same((await Promise.all(held.map((h) => h.response))).map((r) => r.status), Array(K).fill(0), 'the K held die with it');
  await until(async () => value(await scrape(acc.metricsPort), 'acceptor_workers{state="ready"}') === 1);
  const m = await scrape(acc.metricsPort);
  t.equal(value(m, 'acceptor_connection_errors_total{reason="worker_exit"}')! - before, K, `worker_exit +${K}, not +${K + M}`);
  t.equal(value(m, 'acceptor_worker_connections{worker="1"}'), 0, 'no slot left taken');
});

/** Every `acceptor_*_total` sample of a scrape, by series. */
const totals = (text: string): Map<string, number> => new Map(text.split('\n').filter((l) => /^acceptor_\w+_total[{ ]/.test(l)).map((l) => [l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))]));

/** The series of `before` that are lower in `after` (there must be none), and any that vanished. */
function wentDown(before: Map<string, number>, after: Map<string, number>): string[] {
  return [...before].filter(([k, v]) => !(after.get(k)! >= v)).map(([k, v]) => `${k}: ${v} -> ${String(after.get(k))}`);
}

/** accepted + migrated = handled + rejected, at rest (nothing waiting, nothing in flight). */
function identity(text: string, workers: number): { accepted: number; connections: number; handledPlusRejected: number } {
  let handled = 0;
  for (let i = 1; i <= workers; i++) handled += value(text, `acceptor_connections_handled_total{worker="${i}"}`)!;
  let rejected = 0;
  for (const r of REJECT_REASONS) rejected += value(text, `acceptor_connections_rejected_total{reason="${r}"}`)!;
  // A connection handed back at a reload's drain (fdpass) is handled again by its new worker.
  const connections = value(text, 'acceptor_connections_accepted_total')!;
  return { accepted: connections + value(text, 'acceptor_connections_migrated_total')!, connections, handledPlusRejected: handled + rejected };
}

t.test('a worker killed -9: every counter it kept stays, none goes down, and accepted = handled + rejected', async (t) => {
  const acc = await start(['--workers', '2']);
  t.teardown(() => acc.stop('SIGKILL'));
  for (let i = 0; i < 10; i++) {
    const c = rawClient(acc.port);
    c.s.write('GARBAGE\r\n\r\n');
    await c.closed;
  }
  for (let i = 0; i < 6; i++) await get(acc.port, '/');
  // Once a scrape shows them, the primary holds them: a heartbeat or the scrape's answer brought them.
  await untilValue(acc.metricsPort, 'acceptor_connection_errors_total{reason="bad_request"}', 10);
  const before = await scrape(acc.metricsPort);
  const [victim] = workerPids(acc);
  process.kill(victim!, 'SIGKILL');
  await until(async () => value(await scrape(acc.metricsPort), 'acceptor_workers{state="ready"}') === 2 && !workerPids(acc).includes(victim!));
  const after = await scrape(acc.metricsPort);
  t.same(wentDown(totals(before), totals(after)), [], 'no acceptor_*_total series went down');
  t.equal(value(after, 'acceptor_connection_errors_total{reason="bad_request"}'), 10, 'bad_request 10, still');
  t.same([value(after, 'acceptor_connections_handled_total{worker="1"}'), value(after, 'acceptor_connections_handled_total{worker="2"}')], [value(before, 'acceptor_connections_handled_total{worker="1"}'), value(before, 'acceptor_connections_handled_total{worker="2"}')], 'handled per slot, kept');
  const id = identity(after, 2);
  t.equal(id.accepted, 16);
  t.equal(id.handledPlusRejected, 16, 'accepted = handled + rejected');
});

t.test('two reloads under load: no counter goes down at any scrape, and the books balance after', async (t) => {
  const acc = await start(['--workers', '2']);
  t.teardown(() => acc.stop('SIGKILL'));
  const scrapes: Map<string, number>[] = [];
  let done = false;
  const watcher = (async () => {
    while (!done) {
      scrapes.push(totals(await scrape(acc.metricsPort)));
      await sleep(50);
    }
  })();
  const results = await underLoad(acc.port, 4, async () => {
    for (let i = 0; i < 2; i++) {
      const mark = acc.lines.length;
      acc.proc.kill('SIGHUP');
      await acc.waitFor((l) => l.msg === 'reload done', 20_000, mark);
    }
  });
  done = true;
  await watcher;
  t.same(results.flatMap((r) => r.failed), [], 'no request failed');
  const down = scrapes.slice(1).flatMap((s, i) => wentDown(scrapes[i]!, s));
  t.same(down, [], `no series went down in ${scrapes.length} scrapes`);
  const served = results.reduce((n, r) => n + r.ok, 0);
  const m = await scrape(acc.metricsPort);
  const id = identity(m, 2);
  t.equal(id.connections, served, 'accepted: every request (a connection each), and nothing else on this port');
  t.equal(id.handledPlusRejected, id.accepted, 'accepted = handled + rejected: the retired workers\' handled kept');
});
