// Worker lifecycle: crash → replacement, queued connections survive; rolling reload.
import t from 'tap';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { start, fixture, reload, workerPids, until, sleep, fileWhenWritten } from '../helpers/cli.js';
import { read, scrape, value, untilValue, workerConnections } from '../helpers/metrics.js';
import { rawRequest, loop, get, underLoad, keepAliveClients } from '../helpers/http.js';
import { Pool, type WorkerRecord } from '../../src/primary/pool.js';
import { resolveOptions } from '../../src/options.js';
import { Counters } from '../../src/metrics/counters.js';
import { createLogger } from '../../src/log.js';

t.test('detach: a worker whose channel failed leaves the ready list and counts as draining', async (t) => {
  // In-process: a failed send reaches detach() only in the moment between a worker's death and
  // its exit event, which no end-to-end test can time.
  const pool = new Pool(resolveOptions({ workers: 2 }), {} as never, new Counters(), createLogger(0, 'silent', 'json'), { ready() {}, stalled() {}, exit() {}, message() {} });
  const rec = (slot: number): WorkerRecord => ({ slot, state: 'ready', active: 0, unsent: 0, capacity: Infinity, startedAt: 0, readyAt: 1, lastBeat: 0, gone: false, candidate: false }) as unknown as WorkerRecord;
  const [a, b] = [rec(1), rec(2)];
  pool.ready = [a, b];
  pool.detach(a);
  t.equal(a.state, 'draining');
  t.same(pool.ready, [b], 'only the other one is picked');
  pool.detach(a);
  t.same(pool.ready, [b], 'a second failure changes nothing');
  t.equal(b.state, 'ready');
});

/** SIGHUP, and the reload it starts is done. */
t.test('a worker killed with -9 is replaced; connections waiting in the queue are served', async (t) => {
  const holdFile = join(t.testdir(), 'release');
  const acc = await start(['--workers', '2', '--max-connections', '1', '--backlog', '5', '--handler', fixture('hold.mjs')], { env: { HOLD_FILE: holdFile } });
  t.teardown(() => acc.stop('SIGKILL'));
  const before = workerPids(acc);
  t.equal(before.length, 2);
  const held = [rawRequest(acc.port), rawRequest(acc.port)];
  await Promise.all(held.map((h) => h.connected));
  await until(async () => (await read(acc.metricsPort, 'acceptor_worker_connections{worker="1"}')) + (await read(acc.metricsPort, 'acceptor_worker_connections{worker="2"}')) === 2);
  const queued = [rawRequest(acc.port), rawRequest(acc.port), rawRequest(acc.port)];
  await Promise.all(queued.map((h) => h.connected));
  await untilValue(acc.metricsPort, 'acceptor_queue_depth', 3);

  const victim = before[0]!;
  const mark = acc.lines.length;
  process.kill(victim, 'SIGKILL');
  const died = await acc.waitFor((l) => l.msg === 'worker died', 5000, mark);
  t.equal(died.signal, 'SIGKILL');
  t.equal(died.lostConnections, 1, 'it held one connection');
  await acc.waitFor((l) => l.msg === 'worker ready', 5000, mark);
  const after = workerPids(acc);
  t.equal(after.length, 2, 'back to two workers');
  t.notOk(after.includes(victim), 'the dead one is gone');

  writeFileSync(holdFile, '');
  const results = await Promise.all([...held, ...queued].map((h) => h.response));
  const statuses = results.map((r) => r.status);
  t.equal(statuses.filter((s) => s === 200).length, 4, `all three queued and the survivor's held one served: ${statuses}`);
  t.equal(statuses.filter((s) => s === 0).length, 1, 'only the dead worker’s own connection failed');
  t.same(statuses.slice(2), [200, 200, 200], 'every queued connection served');
});

t.test('the only worker killed -9 after it ran healthy: replaced at once, and the connections waiting for it are served, none told busy', async (t) => {
  const holdFile = join(t.testdir(), 'release');
  const acc = await start(['--workers', '1', '--max-connections', '1', '--backlog', '5', '--handler', fixture('hold.mjs')], { env: { HOLD_FILE: holdFile } });
  t.teardown(() => acc.stop('SIGKILL'));
  const [victim] = workerPids(acc);
  const held = rawRequest(acc.port);
  await held.connected;
  await untilValue(acc.metricsPort, 'acceptor_worker_connections{worker="1"}', 1);
  const queued = [rawRequest(acc.port), rawRequest(acc.port)];
  await untilValue(acc.metricsPort, 'acceptor_queue_depth', 2);
  // Ready for over a second: its death is a crash, not a failed start, so no backoff. The
  // replacement must be forked before the dispatcher hears of the exit: with no worker up or
  // starting, it would tell the waiting connections busy.
  await sleep(1100);
  const mark = acc.lines.length;
  process.kill(victim!, 'SIGKILL');
  const died = await acc.waitFor((l) => l.msg === 'worker died', 5000, mark);
  t.equal(died.restartInMs, 0, 'replaced at once');
  writeFileSync(holdFile, '');
  t.same((await Promise.all(queued.map((h) => h.response))).map((r) => r.status), [200, 200], 'both waiting connections served by the replacement');
  t.equal(await read(acc.metricsPort, 'acceptor_connections_rejected_total{reason="no_worker"}'), 0, 'none told busy');
  t.equal((await held.response).status, 0, 'the dead worker’s own connection is lost with it');
});

t.test('kill -9 under a load loop: failures at most the worker’s open connections, replacement quick', async (t) => {
  const acc = await start(['--workers', '2', '--host', '127.0.0.1']);
  t.teardown(() => acc.stop('SIGKILL'));
  let done = false;
  // Four loops, one connection each at a time: the victim holds at most four open connections.
  const LOOPS = 4;
  const loads = Array.from({ length: LOOPS }, () => loop(acc.port, () => done));
  // Past the first second of uptime: a worker that dies sooner counts toward crash-loop backoff.
  await sleep(1500);
  const victim = workerPids(acc)[0]!;
  const mark = acc.lines.length;
  const t0 = Date.now();
  process.kill(victim, 'SIGKILL');
  const died = await acc.waitFor((l) => l.msg === 'worker died', 5000, mark);
  await acc.waitFor((l) => l.msg === 'worker ready', 15_000, mark);
  const readyMs = Date.now() - t0;
  await sleep(500);
  done = true;
  const results = await Promise.all(loads);
  const failed = results.flatMap((r) => r.failed);
  const ok = results.reduce((n, r) => n + r.ok, 0);
  t.ok(failed.length <= Number(died.lostConnections), `failed requests (${failed.length}) ≤ the dead worker's open connections (${died.lostConnections})`);
  t.ok(Number(died.lostConnections) <= LOOPS, 'which were at most the loops');
  // Connections Node's IPC had queued for the dead worker go to the other one, not left hanging.
  t.notOk(failed.includes('client timeout'), `no request left hanging: ${failed.join(', ')}`);
  // Behaviour bound, not a speed target: no crash backoff for a worker that ran healthy.
  t.equal(died.restartInMs, 0, 'replaced at once');
  // (How fast it is ready is a figure, not a bound: a loaded machine took 3,963 ms.)
  t.comment(`figure: kill -9 under load: replacement ready ${readyMs} ms after the kill; ${failed.length} failed of ${ok + failed.length} requests (${failed.join(", ")}); ${died.lostConnections} lost with the worker`);
});

t.test('SIGHUP: rolling reload under a request loop loses nothing and keeps the port', async (t) => {
  const acc = await start(['--workers', '2', '--host', '127.0.0.1']);
  t.teardown(() => acc.stop('SIGKILL'));
  const before = workerPids(acc);
  const restarts = await read(acc.metricsPort, 'acceptor_worker_restarts_total{reason="reload"}');
  const mark = acc.lines.length;
  const results = await underLoad(acc.port, 2, () => reload(acc));
  const ok = results.reduce((n, r) => n + r.ok, 0);
  t.same(results.flatMap((r) => r.failed), [], 'zero failed requests');
  t.ok(ok > 20, `${ok} requests served during the reload`);
  t.comment(`figure: SIGHUP reload under load: ${ok} requests, ${results.flatMap((r) => r.failed).length} failed`);
  const after = workerPids(acc);
  t.equal(after.length, 2);
  t.same(after.filter((p) => before.includes(p)), [], 'every worker replaced');
  t.equal(acc.lines.filter((l, i) => i >= mark && l.msg === 'worker stopped' && l.reason === 'reload').length, 2);
  t.equal((await read(acc.metricsPort, 'acceptor_worker_restarts_total{reason="reload"}')) - restarts, 2, 'restarts{reason="reload"} +2');
});

// The old race at a drain: an idle keep-alive connection closed while its client's next request is
// already on the way. Where connections cannot move to the new worker (ipc here; TLS in
// migrate.test.ts, which has the fdpass case), clients that send back to back, as pools and
// browsers do, lose nothing: each connection is told `Connection: close` with an answer, and the
// client reconnects (to a new worker).
for (const app of [undefined, 'apps/express.mjs']) t.test(`ipc: SIGHUP ×3 under keep-alive clients sending back to back (${app ?? 'a request listener'}): no request fails; each connection is told to close with an answer`, async (t) => {
  const acc = await start(['--workers', '2', '--transport', 'ipc', ...(app ? [fixture(app)] : [])]);
  t.teardown(() => acc.stop('SIGKILL'));
  let stop = false;
  const clients = keepAliveClients(acc.port, 20, () => stop);
  await sleep(300);
  for (let i = 0; i < 3; i++) {
    await reload(acc);
    await sleep(300);
  }
  stop = true;
  const r = await clients;
  t.same(r.failed, [], `${r.ok} requests on ${r.connects} connections, none failed`);
  t.ok(r.toldClose >= 3 * 20, `each reload told every connection to close with an answer (${r.toldClose} told)`);
});

t.test('SIGHUP: each new worker is ready before the old one drains, so no connection ever waits', async (t) => {
  // One worker and a 1 ms queue timeout: had the old worker drained before its replacement was
  // ready, the connections of that gap would wait in the queue and be told busy (queue_timeout),
  // instead of the queue hiding the gap by serving them late.
  const acc = await start(['--workers', '1', '--host', '127.0.0.1', '--queue-timeout', '1ms']);
  t.teardown(() => acc.stop('SIGKILL'));
  const [oldPid] = workerPids(acc);
  const mark = acc.lines.length;
  const results = await underLoad(acc.port, 2, () => reload(acc));
  t.same(results.flatMap((r) => r.failed), [], 'not one request told busy or failed');
  const m = await scrape(acc.metricsPort);
  for (const reason of ['queue_timeout', 'queue_full', 'no_worker']) t.equal(value(m, `acceptor_connections_rejected_total{reason="${reason}"}`), 0, `no ${reason}`);
  const lines = acc.lines.slice(mark);
  const newReady = lines.findIndex((l) => l.msg === 'worker ready' && l.workerPid !== oldPid);
  const oldDrains = lines.findIndex((l) => l.msg === 'draining' && l.pid === oldPid);
  t.ok(newReady >= 0 && oldDrains > newReady, `the new worker's ready (line ${newReady}) comes before the old one's drain (line ${oldDrains})`);
  t.comment(`figure: SIGHUP reload of the only worker with a 1 ms queue timeout: ${results.reduce((n, r) => n + r.ok, 0)} requests, ${results.flatMap((r) => r.failed).length} failed`);
});

t.test('a stalled worker is skipped while another serves: no connection waits for it, none is refused', async (t) => {
  const pidFile = join(t.testdir(), 'pid');
  const acc = await start(['--workers', '2', '--watchdog', '0', '--handler', fixture('block.mjs')], { env: { BLOCK_PID_FILE: pidFile, BLOCK_MS: '4000' } });
  t.teardown(() => acc.stop('SIGKILL'));
  const blocking = rawRequest(acc.port, '/block');
  const wedged = Number(await fileWhenWritten(pidFile));
  const stalled = await acc.waitFor((l) => l.msg === 'worker stalled: no new connections for it');
  const other = workerPids(acc).find((p) => p !== wedged)!;
  const before = await scrape(acc.metricsPort);
  t.equal(value(before, 'acceptor_workers{state="stalled"}'), 1, 'one worker counts as stalled');
  const answers = await Promise.all(Array.from({ length: 10 }, () => get(acc.port, '/pid')));
  t.same(answers.map((a) => a.status), Array(10).fill(200), 'all ten served');
  t.same([...new Set(answers.map((a) => Number(a.body)))], [other], 'every one by the worker that is not stalled');
  const after = await scrape(acc.metricsPort);
  t.equal(value(after, 'acceptor_queue_depth'), 0, 'none waits for the stalled one');
  const otherSlot = 3 - Number(stalled.slot);
  const handled = `acceptor_connections_handled_total{worker="${otherSlot}"}`;
  t.equal(value(after, handled)! - value(before, handled)!, 10, 'the other worker handled the ten');
  t.equal((await blocking.response).status, 200, 'and finishes it once its loop runs again');
  const back = await acc.waitFor((l) => l.msg === 'worker responsive again');
  t.equal(back.slot, stalled.slot, 'the stalled one is responsive again');
  const untilBack = acc.lines.slice(0, acc.lines.indexOf(back));
  t.equal(untilBack.filter((l) => l.msg === 'worker stalled: no new connections for it' && l.slot === stalled.slot).length, 1, 'taken out once, not again at every check while it stays silent');
  await untilValue(acc.metricsPort, 'acceptor_workers{state="ready"}', 2);
  t.equal(await read(acc.metricsPort, 'acceptor_workers{state="stalled"}'), 0, 'none stalled');
  // Ties between idle workers go round the slots in turn: it takes its share again.
  const later = await Promise.all(Array.from({ length: 4 }, () => get(acc.port, '/pid')));
  t.ok(later.some((a) => Number(a.body) === wedged), 'and it is handed connections again');
});

t.test('SIGHUP to the process group (a closed terminal) reloads; no worker dies of it', async (t) => {
  const acc = await start(['--workers', '2', '--host', '127.0.0.1'], { group: true });
  t.teardown(() => acc.stop('SIGKILL'));
  const mark = acc.lines.length;
  process.kill(-acc.proc.pid!, 'SIGHUP');
  await acc.waitFor((l) => l.msg === 'reload done', 20_000, mark);
  const after = acc.lines.slice(mark);
  t.same(after.filter((l) => l.msg === 'worker died'), [], 'no worker died of the signal');
  t.equal(after.filter((l) => l.msg === 'worker stopped' && l.reason === 'reload').length, 2, 'both reloaded');
  t.equal((await get(acc.port)).status, 200);
});

t.test('SIGTERM during a rolling reload: the reload stops where it is, no worker starts, the requests in flight finish', async (t) => {
  const dir = t.testdir();
  const acc = await start(['--workers', '2', '--drain-timeout', '10s', '--handler', fixture('hold.mjs')], { env: { HOLD_DIR: dir } });
  t.teardown(() => acc.stop('SIGKILL'));
  const slot1 = acc.lines.find((l) => l.msg === 'worker ready' && l.slot === 1)!.workerPid;
  const held = (n: number) => async (): Promise<number[] | undefined> => {
    const each = workerConnections(await scrape(acc.metricsPort), 2);
    return each[0]! + each[1]! === n ? each : undefined;
  };
  const a = rawRequest(acc.port, '/a');
  const aOnSlot1 = (await until(held(1)))![0] === 1;
  const b = rawRequest(acc.port, '/b'); // least loaded: the other worker
  await until(held(2));
  const mark = acc.lines.length;
  acc.proc.kill('SIGHUP');
  // Slot 1 goes first: once its successor is ready it drains, holding its request.
  await acc.waitFor((l) => l.msg === 'draining' && l.pid === slot1, 15_000, mark);
  const stopAt = acc.lines.length;
  acc.proc.kill('SIGTERM');
  await acc.waitFor((l) => l.msg === 'shutting down: draining', 5000, stopAt);
  // Slot 1's old worker finishes first, while slot 2's still holds a request: a reload that went
  // on would now start slot 2's successor, and end only once slot 2's old worker had gone.
  writeFileSync(join(dir, aOnSlot1 ? 'a' : 'b'), '');
  await acc.waitFor((l) => l.msg === 'reload done', 10_000, stopAt);
  writeFileSync(join(dir, aOnSlot1 ? 'b' : 'a'), '');
  t.same([(await a.response).status, (await b.response).status], [200, 200], 'both requests in flight are served');
  t.equal((await acc.exited).code, 0, 'exit 0: everything drained');
  t.same(acc.lines.slice(stopAt).filter((l) => l.msg === 'worker ready'), [], 'no worker started once the shutdown began');
  t.equal(acc.lines.slice(mark, stopAt).filter((l) => l.msg === 'worker ready').length, 1, "the reload's one successor, for slot 1, before it");
});

t.test('SIGHUP, then SIGTERM while the new worker is still starting: it is drained once ready, never serves; exit 0 without waiting out --drain-timeout', async (t) => {
  const acc = await start(['--workers', '1', '--drain-timeout', '20s', '--handler', fixture('slow-load.mjs')], { env: { LOAD_MS: '1000' } });
  t.teardown(() => acc.stop('SIGKILL'));
  const mark = acc.lines.length;
  acc.proc.kill('SIGHUP');
  await acc.waitFor((l) => l.msg === 'rolling reload', 5000, mark);
  // (Sent before the first was handled, the kernel would merge the two into one.)
  acc.proc.kill('SIGHUP');
  await acc.waitFor((l) => l.msg === 'reload requested while one is under way: the one under way covers it', 5000, mark);
  const t0 = Date.now();
  acc.proc.kill('SIGTERM');
  t.same(await acc.exited, { code: 0, signal: null }, 'exit 0: nothing had to be killed');
  const ms = Date.now() - t0;
  t.ok(ms < 10_000, `stopped in ${ms} ms, not at the 20 s --drain-timeout`);
  const after = acc.lines.slice(mark);
  t.equal(after.filter((l) => l.msg === 'worker ready while stopping: draining it').length, 1, "the reload's new worker, drained as it became ready");
  t.same(after.filter((l) => l.msg === 'worker stopped').map((l) => [l.reason, l.signal]).sort(), [['shutdown', null], ['shutdown', null]], 'both workers stopped by the drain, neither killed');
  t.equal(after.filter((l) => l.msg === 'reload requested while one is under way: the one under way covers it').length, 1, 'the second SIGHUP, said');
});

t.test('a reload whose new worker cannot start keeps the old ones', async (t) => {
  const acc = await start(['--workers', '1']);
  t.teardown(() => acc.stop('SIGKILL'));
  const before = workerPids(acc);
  // Break the handler for new workers only: they read the config the primary gives them, so
  // instead make the new worker die by killing it as soon as it appears.
  const mark = acc.lines.length;
  acc.proc.kill('SIGHUP');
  const newPid = (await until(() => workerPids(acc).find((p) => !before.includes(p)), 5000, 5))!;
  process.kill(newPid, 'SIGKILL');
  await acc.waitFor((l) => l.msg === 'reload done', 10_000, mark);
  t.same(workerPids(acc), before, 'old worker still serving');
  t.equal((await get(acc.port)).status, 200);
  const after = acc.lines.slice(mark);
  t.ok(after.some((l) => l.msg === 'new worker died during reload; the old one keeps the slot' && l.slot === 1), 'the log says so, with the slot');
  t.ok(after.some((l) => /^reload stopped/.test(String(l.msg)) && l.slot === 1 && l.err === 'worker 1 exited during start-up'), 'and why the reload stopped');
  t.notOk(after.some((l) => l.msg === 'worker died'), 'not taken for a crash: no replacement is forked for a slot its old worker still holds');
});

t.test("a handler's own messages on the worker's IPC channel are ignored by the primary", async (t) => {
  // null, a string, a number, a boolean and an object without the acceptor's fields, sent at load.
  const acc = await start(['--workers', '1', '--handler', fixture('talks-on-ipc.mjs')]);
  t.teardown(() => acc.stop('SIGKILL'));
  const pid = workerPids(acc);
  // The channel is ordered and the handler loads before the worker says ready: the primary had
  // read them all when it logged the worker ready.
  t.equal((await get(acc.port)).status, 200, 'the worker serves');
  t.equal(acc.proc.exitCode, null, 'the primary runs');
  t.same(workerPids(acc), pid, 'the same worker');
  t.equal((await get(acc.port)).status, 200);
});

t.test("a handler's messages shaped like the acceptor's own are not taken for them: admission stays exact", async (t) => {
  // On each request the handler sends { t: 'd', n: 1 } (a close report, as the acceptor's once
  // was), a heartbeat, ready, a failure and a metrics answer. Taken for a close report, it would
  // free the held connection's slot and the next connection would go to the worker past
  // --max-connections 1 instead of waiting.
  const dir = t.testdir({ hold: {}, sent: {} });
  const [hold, sent] = [join(dir, 'hold'), join(dir, 'sent')];
  const acc = await start(['--workers', '1', '--max-connections', '1', '--backlog', '1', '--handler', fixture('talks-on-ipc.mjs')], { env: { HOLD_DIR: hold, REQUEST_SENT_DIR: sent } });
  t.teardown(() => acc.stop('SIGKILL'));
  const a = rawRequest(acc.port, '/a');
  await fileWhenWritten(join(sent, 'a'), 10_000);
  // A scrape waits for the worker's answer, which comes after the handler's messages on the
  // same ordered channel: the primary has read them all once it returns.
  await scrape(acc.metricsPort);
  const b = rawRequest(acc.port, '/b');
  await b.connected;
  await untilValue(acc.metricsPort, 'acceptor_queue_depth', 1);
  const m = await scrape(acc.metricsPort);
  t.equal(value(m, 'acceptor_worker_connections{worker="1"}'), 1, 'the worker holds one connection');
  t.equal(value(m, 'acceptor_queue_depth'), 1, 'the next one waits');
  const c = await rawRequest(acc.port, '/c').response;
  t.equal(c.status, 503, 'the one after is told busy: the queue of 1 is full');
  writeFileSync(join(hold, 'a'), '');
  writeFileSync(join(hold, 'b'), '');
  t.equal((await a.response).status, 200);
  t.equal((await b.response).status, 200, 'the waiting one is served once the first closes');
  const after = await scrape(acc.metricsPort);
  t.equal(value(after, 'acceptor_connections_rejected_total{reason="queue_full"}'), 1);
  t.equal(value(after, 'acceptor_worker_connections{worker="1"}'), 0, 'both closes counted once');
  t.equal(workerPids(acc).length, 1, 'one worker, never taken for failed or replaced');
});

for (const args of [['--transport', 'ipc'], ['--transport', 'fdpass'], ['--strategy', 'shared']]) {
  t.test(`the workers' log lines reach the primary's stdout (${args.join(' ')})`, async (t) => {
    // A worker whose stdout were a pipe the primary never reads would lose them, and block once
    // the pipe filled.
    const acc = await start(['--workers', '1', ...args]);
    t.teardown(() => acc.stop('SIGKILL'));
    const mark = acc.lines.length;
    acc.proc.kill('SIGTERM');
    t.equal((await acc.exited).code, 0);
    t.ok(acc.lines.slice(mark).some((l) => l.msg === 'drained; exiting' && l.worker === 1), "the worker's last line");
  });
}

for (const transport of ['fdpass', 'ipc']) {
  t.test(`a worker draining in a reload is handed no new connection, though it still sends heartbeats, and reports its last close (${transport})`, async (t) => {
    const dir = t.testdir();
    const acc = await start(['--workers', '1', '--transport', transport, '--drain-timeout', '30s', '--handler', fixture('hold.mjs')], { env: { HOLD_DIR: dir } });
    t.teardown(() => acc.stop('SIGKILL'));
    const [oldPid] = workerPids(acc);
    const a = rawRequest(acc.port, '/a'); // held by the old worker: its drain waits for it
    await untilValue(acc.metricsPort, 'acceptor_worker_connections{worker="1"}', 1);
    const mark = acc.lines.length;
    acc.proc.kill('SIGHUP');
    await acc.waitFor((l) => l.msg === 'draining' && l.pid === oldPid, 10_000, mark);
    const newPid = workerPids(acc).find((p) => p !== oldPid)!;
    // One held by the new worker too: were the old one taken back as ready, the two would tie at
    // one connection each and share what comes next.
    const b = rawRequest(acc.port, '/b');
    await b.connected; // handed off before anything that connects later
    writeFileSync(join(dir, 'c'), '');
    const served: string[] = [];
    for (let i = 0; i < 6; i++) {
      served.push((await get(acc.port, '/c')).body);
      await sleep(120); // a heartbeat of the old worker's (HEARTBEAT_MS) comes between any two
    }
    t.same([...new Set(served)], [`served by ${newPid}\n`], 'every one by the new worker');
    t.equal(await read(acc.metricsPort, 'acceptor_workers{state="draining"}'), 1, 'the old one counts as draining');
    writeFileSync(join(dir, 'a'), '');
    writeFileSync(join(dir, 'b'), '');
    t.equal((await a.response).body, `served by ${oldPid}\n`, 'the old one finishes its request');
    t.equal((await b.response).body, `served by ${newPid}\n`);
    await acc.waitFor((l) => l.msg === 'reload done', 10_000, mark);
    // Its last close goes back just before it exits (exitDrained): were it lost, the primary would
    // count the connection as lost with the worker, and the slot's count would be off.
    t.equal(await read(acc.metricsPort, 'acceptor_connection_errors_total{reason="worker_exit"}'), 0, 'no connection counted lost with the drained worker');
  });
}

// Slot 1 is reloaded first: the old worker of slot 2 dies before its turn; the old worker of slot 1
// dies while its successor starts (both a crash, replaced at once by the crash path).
// Workers that start: slot 2's crash replacement, no successor (it died first), slot 1's successor;
// or slot 1's successor and crash replacement (the successor then goes), slot 2's successor.
const cases = [[2, 'while the reload waits for its turn', [1, 2]], [1, 'while its successor starts', [1, 1, 2]]] as const;
for (const [slot, when, started] of cases) {
  t.test(`a worker that dies ${when}: the reload goes on, and each slot ends with one worker`, async (t) => {
    const acc = await start(['--workers', '2']);
    t.teardown(() => acc.stop('SIGKILL'));
    const victim = Number(acc.lines.find((l) => l.msg === 'worker ready' && l.slot === slot)!.workerPid);
    const mark = acc.lines.length;
    acc.proc.kill('SIGHUP');
    await acc.waitFor((l) => l.msg === 'rolling reload', 5000, mark);
    process.kill(victim, 'SIGKILL');
    await acc.waitFor((l) => l.msg === 'reload done', 20_000, mark);
    const after = acc.lines.slice(mark);
    t.ok(after.some((l) => l.msg === 'worker died' && l.slot === slot && l.signal === 'SIGKILL'), 'its death is a crash');
    await untilValue(acc.metricsPort, 'acceptor_workers{state="ready"}', 2);
    const m = await scrape(acc.metricsPort);
    for (const state of ['starting', 'draining', 'stalled']) t.equal(value(m, `acceptor_workers{state="${state}"}`), 0, `none ${state}`);
    t.equal(workerPids(acc).length, 2, 'two workers, one per slot');
    const readyLines = () => acc.lines.slice(mark).filter((l) => l.msg === 'worker ready');
    await until(() => readyLines().length >= started.length);
    t.same(readyLines().map((l) => l.slot).sort(), started, 'workers started, by slot');
    t.equal((await get(acc.port)).status, 200);
  });
}

t.test('a worker that dies while its successor starts, its slot backing off: the successor keeps the slot, and the replacement is cancelled', async (t) => {
  // Draining the successor for a replacement still waiting out the backoff would leave the slot
  // with no worker until the timer fires.
  const marker = join(t.testdir(), 'broken');
  const acc = await start(['--workers', '1', '--restart-backoff-max', '10s', '--handler', fixture('throws-if-marker.mjs')], { env: { MARKER: marker } });
  t.teardown(() => acc.stop('SIGKILL'));
  // Start-up failures in a row until the slot's next restart waits 1.6 s; then it loads again.
  writeFileSync(marker, '');
  let mark = acc.lines.length;
  process.kill(workerPids(acc)[0]!, 'SIGKILL');
  await acc.waitFor((l) => l.msg === 'worker died' && l.restartInMs === 1600, 20_000, mark);
  rmSync(marker);
  const old = Number((await acc.waitFor((l) => l.msg === 'worker ready', 10_000, mark)).workerPid);
  // Within 10 s of its ready (a longer run would reset the backoff): killed once the reload has
  // forked its successor, which is starting.
  mark = acc.lines.length;
  acc.proc.kill('SIGHUP');
  await acc.waitFor((l) => l.msg === 'rolling reload', 5000, mark);
  process.kill(old, 'SIGKILL');
  const died = await acc.waitFor((l) => l.msg === 'worker died' && l.signal === 'SIGKILL', 5000, mark);
  t.ok(Number(died.restartInMs) >= 1600, `its replacement backs off (${String(died.restartInMs)} ms)`);
  const successor = Number((await acc.waitFor((l) => l.msg === 'worker ready', 10_000, mark)).workerPid);
  const kept = await acc.waitFor((l) => l.msg?.startsWith('old worker died during reload; its successor keeps the slot') === true, 10_000, mark);
  t.match(kept, { slot: 1, workerPid: successor });
  await acc.waitFor((l) => l.msg === 'reload done', 10_000, mark);
  t.same(workerPids(acc), [successor], 'the successor is the worker');
  t.equal(value(await scrape(acc.metricsPort), 'acceptor_workers{state="ready"}'), 1, 'and it is ready: the slot was never empty');
  // Past the time the cancelled replacement would have been forked: nothing else starts.
  await sleep(Number(died.restartInMs) + 500);
  const after = acc.lines.slice(mark);
  t.equal(after.filter((l) => l.msg === 'worker ready').length, 1, 'one worker started: the successor');
  t.notOk(after.some((l) => l.msg === 'draining'), 'none drained');
  t.same(workerPids(acc), [successor]);
  t.equal((await get(acc.port)).status, 200);
});
