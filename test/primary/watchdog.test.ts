// Wedged workers: the primary stops handing them connections, tells clients busy, and the
// watchdog replaces them.
import t from 'tap';
import { join } from 'node:path';
import { start, fixture, until, fileWhenWritten, workerPids } from '../helpers/cli.js';
import { get, rawRequest } from '../helpers/http.js';
import { read, untilValue } from '../helpers/metrics.js';

t.test('every worker wedged: connections wait --stall-timeout for them, then are told busy; watchdog replaces them', async (t) => {
  const acc = await start(['--workers', '2', '--stall-timeout', '1s', '--watchdog', '3s', '--handler', fixture('block-all.mjs')], { env: { BLOCK_MS: '20000' } });
  t.teardown(() => acc.stop('SIGKILL'));
  // One request per worker wedges both (least-loaded hand-off spreads them).
  const wedging = [rawRequest(acc.port), rawRequest(acc.port)];
  await Promise.all(wedging.map((w) => w.connected));
  await untilValue(acc.metricsPort, 'acceptor_workers{state="stalled"}', 2);
  const noWorker = 'acceptor_connections_rejected_total{reason="no_worker"}';
  const before = await read(acc.metricsPort, noWorker);
  const probes = await Promise.all(Array.from({ length: 5 }, () => rawRequest(acc.port).response));
  for (const p of probes) {
    t.equal(p.status, 503, 'told busy');
    t.ok(p.ms < 1500, `within --stall-timeout + 0.5 s of arriving after the stall (${p.ms} ms)`);
  }
  // Not before: each worker was waited for --stall-timeout from its stall (the primary's own clock).
  const expired = acc.lines.filter((l) => l.msg === 'worker stalled past --stall-timeout: connections no longer wait for it');
  t.same(expired.map((l) => l.slot).sort(), [1, 2], 'each worker stopped being waited for, once');
  for (const e of expired) {
    const waited = Number(e.stalledMs);
    t.ok(waited >= 1000 && waited < 1500, `slot ${String(e.slot)}: --stall-timeout after its stall (${waited} ms)`);
  }
  t.equal((await read(acc.metricsPort, noWorker)) - before, 5, 'each of the 5 counted once as no_worker');
  // Both wedged workers are replaced, once each, after the deadline; the replacements are healthy.
  const replaced = (await until(() => {
    const r = acc.lines.filter((l) => l.msg === 'worker event loop stalled; replacing it');
    return r.length >= 2 ? r : undefined;
  }, 10_000))!;
  t.ok(replaced.every((r) => Number(r.stalledMs) >= 3000), `after the watchdog deadline (${replaced.map((r) => r.stalledMs).join(', ')} ms)`);
  await until(() => acc.lines.filter((l) => l.msg === 'worker ready').length >= 4, 10_000);
  t.equal(await read(acc.metricsPort, 'acceptor_worker_restarts_total{reason="watchdog"}'), 2, 'two restarts, reason watchdog');
  const lost = await Promise.all(wedging.map((w) => w.response));
  t.same(lost.map((r) => r.status), [0, 0], "the wedged workers' own connections are lost with them");
});

t.test('the last worker wedged: connections already waiting for a slot are told busy --stall-timeout after the stall, not at the queue timeout', async (t) => {
  const pidFile = join(t.testdir(), 'pid');
  const acc = await start(['--workers', '1', '--max-connections', '1', '--backlog', '4', '--queue-timeout', '30s', '--stall-timeout', '500ms', '--watchdog', '0', '--handler', fixture('block.mjs')], { env: { BLOCK_PID_FILE: pidFile, BLOCK_MS: '20000' } });
  t.teardown(() => acc.stop('SIGKILL'));
  const noWorker = 'acceptor_connections_rejected_total{reason="no_worker"}';
  const before = await read(acc.metricsPort, noWorker);
  const wedging = rawRequest(acc.port, '/block');
  const wedged = Number(await fileWhenWritten(pidFile));
  // Queued behind the wedged one's slot, before the primary counts it stalled (400 ms silent).
  const openedAt = Date.now();
  const waiting = [rawRequest(acc.port), rawRequest(acc.port)];
  await Promise.all(waiting.map((w) => w.connected));
  const told = await Promise.all(waiting.map((w) => w.response));
  const stall = acc.lines.find((l) => l.msg === 'worker stalled: no new connections for it');
  t.ok(stall && Number(stall.time) > openedAt, 'they were waiting when it stalled (admitted before, not refused on arrival)');
  t.same(told.map((r) => r.status), [503, 503], 'both told busy');
  for (const r of told) t.ok(r.ms < 10_000, `at the stall's timeout (${r.ms} ms), not at the 30 s queue timeout or when the worker wakes after 20 s`);
  const expired = acc.lines.find((l) => l.msg === 'worker stalled past --stall-timeout: connections no longer wait for it')!;
  t.ok(Number(expired.stalledMs) >= 500, `not before --stall-timeout (${String(expired.stalledMs)} ms)`);
  t.equal((await read(acc.metricsPort, noWorker)) - before, 2, 'no_worker +2');
  process.kill(wedged, 'SIGKILL');
  t.equal((await wedging.response).status, 0, 'the wedged one is lost with its worker');
});

t.test('a worker that takes longer than --watchdog to load its handler is not taken for a stalled one', async (t) => {
  // It sends no heartbeat until loaded: only ready and stalled workers are watched.
  const acc = await start(['--workers', '1', '--watchdog', '1s', '--handler', fixture('slow-load.mjs')], { env: { LOAD_MS: '2500' } });
  t.teardown(() => acc.stop('SIGKILL'));
  t.same((await get(acc.port)).status, 200, 'it serves once loaded');
  t.equal(acc.lines.filter((l) => l.msg === 'worker event loop stalled; replacing it').length, 0, 'not replaced');
  t.equal(acc.lines.filter((l) => l.msg === 'worker ready').length, 1, 'one worker, ready once');
  t.equal(await read(acc.metricsPort, 'acceptor_worker_restarts_total{reason="watchdog"}'), 0, 'no watchdog restart');
});

t.test('a worker wedged while a reload drains it is left to --drain-timeout, not killed and replaced by the watchdog', async (t) => {
  // (The watchdog stops with a shutdown: a reload is where a draining worker meets it.)
  const pidFile = join(t.testdir(), 'pid');
  const acc = await start(['--workers', '1', '--watchdog', '3s', '--drain-timeout', '20s', '--handler', fixture('block.mjs')], { env: { BLOCK_PID_FILE: pidFile, BLOCK_MS: '6000' } });
  t.teardown(() => acc.stop('SIGKILL'));
  const wedging = rawRequest(acc.port, '/block');
  await fileWhenWritten(pidFile);
  // The reload retires it once its replacement is ready, before --watchdog of silence.
  const mark = acc.lines.length;
  acc.proc.kill('SIGHUP');
  await acc.waitFor((l) => l.msg === 'worker ready', 15_000, mark);
  t.equal((await wedging.response).status, 200, 'the wedged request is answered once the worker wakes, 6 s in');
  await acc.waitFor((l) => l.msg === 'reload done', 20_000, mark);
  t.equal(acc.lines.filter((l) => l.msg === 'worker event loop stalled; replacing it').length, 0, 'the watchdog left it alone');
  t.same(acc.lines.filter((l, i) => i >= mark && l.msg === 'worker stopped').map((l) => l.reason), ['reload'], 'it stopped once, drained by the reload');
  t.equal(workerPids(acc).length, 1, 'one worker after the reload: no replacement of the drained one');
  t.equal(await read(acc.metricsPort, 'acceptor_worker_restarts_total{reason="watchdog"}'), 0, 'no watchdog restart');
});

t.test('one worker wedged past --watchdog is replaced, and the other worker serves on', async (t) => {
  const pidFile = join(t.testdir(), 'pid');
  const acc = await start(['--workers', '2', '--watchdog', '1s', '--handler', fixture('block.mjs')], { env: { BLOCK_PID_FILE: pidFile, BLOCK_MS: '20000' } });
  t.teardown(() => acc.stop('SIGKILL'));
  const mark = acc.lines.length;
  const wedging = rawRequest(acc.port, '/block');
  const wedged = Number(await fileWhenWritten(pidFile));
  const other = workerPids(acc).find((p) => p !== wedged)!;
  const replaced = await acc.waitFor((l) => l.msg === 'worker event loop stalled; replacing it', 10_000, mark);
  t.equal(replaced.workerPid, wedged, 'the wedged worker is the one replaced');
  const fresh = await acc.waitFor((l) => l.msg === 'worker ready' && l.workerPid !== wedged && l.workerPid !== other, 10_000, mark);
  // Idle workers tie, and ties go round the slots: the healthy worker keeps its share. Taking the
  // wedged one out of service must not take the other with it.
  const served = new Set<number>();
  for (let i = 0; i < 6; i++) served.add(Number((await get(acc.port, '/pid')).body));
  t.same([...served].sort(), [other, Number(fresh.workerPid)].sort(), 'served by the healthy worker and the replacement, by both');
  t.equal((await wedging.response).status, 0, "the wedged worker's own connection is lost with it");
  t.equal(await read(acc.metricsPort, 'acceptor_worker_restarts_total{reason="watchdog"}'), 1, 'one watchdog restart');
});

t.test('workers busy with CPU bursts are waited for: nobody is refused while every worker is stalled', async (t) => {
  // A long --stall-timeout: on a loaded machine a burst can take longer than the default 2 s of
  // wall time, and then refusing is the rule. (Its length: the tests above.)
  const acc = await start(['--workers', '2', '--stall-timeout', '10s', '--handler', fixture('block.mjs')], { env: { BLOCK_MS: '1500' } });
  t.teardown(() => acc.stop('SIGKILL'));
  const refused = 'acceptor_connections_rejected_total{reason="no_worker"}';
  const stalls = (): number => acc.lines.filter((l) => l.msg === 'worker stalled: no new connections for it').length;
  const statuses: number[] = [];
  for (let i = 0; i < 3; i++) {
    // One 1.5 s burst per worker (the least-loaded hand-off spreads them): each is silent long
    // enough, well past the 400 ms that makes it stalled, for the primary to see it.
    // Both ready again (a heartbeat after the last burst), so that one burst goes to each.
    await untilValue(acc.metricsPort, 'acceptor_workers{state="ready"}', 2);
    const seen = stalls();
    const bursts = [rawRequest(acc.port, '/block'), rawRequest(acc.port, '/block')];
    await until(() => stalls() >= seen + 2, 30_000);
    statuses.push((await get(acc.port, '/')).status);
    t.same((await Promise.all(bursts.map((b) => b.response))).map((r) => r.status), [200, 200]);
  }
  t.same(statuses, [200, 200, 200], 'each request made while both workers were stalled was served');
  t.equal(await read(acc.metricsPort, refused), 0, 'no_worker 0');
});
