// The fdpass transport in the running acceptor: a worker's death, descriptor counts after a storm,
// nothing leaking into a handler's children, and hand-offs in admission order.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { start, fixture, sleep, until, workerPids, openFds, TRANSPORTS } from '../helpers/cli.js';
import { get, rawRequest } from '../helpers/http.js';
import { scrape, value } from '../helpers/metrics.js';
import { storm } from '../../bench/load/storm.js';

for (const transport of TRANSPORTS) {
  t.test(`${transport}: a worker killed with hand-offs it never read; each is counted once or handed on`, async (t) => {
    const dir = t.testdir();
    const pidFile = join(dir, 'pid');
    const acc = await start(['--workers', '2', '--max-connections', '50', '--transport', transport, '--handler', fixture('block.mjs'), '--watchdog', '0'], { env: { BLOCK_PID_FILE: pidFile, BLOCK_MS: '20000' } });
    t.teardown(() => acc.stop('SIGKILL'));
    const before = await scrape(acc.metricsPort);
    const blocked = rawRequest(acc.port, '/block');
    const victim = Number(await until(() => { try { return readFileSync(pidFile, 'utf8'); } catch { return ''; } }));
    // Sent while its loop is wedged (before it counts as stalled, 400 ms): about half go to it,
    // and it reads none of them.
    const N = 10;
    const conns = [];
    for (let i = 0; i < N; i++) {
      const c = rawRequest(acc.port, `/${i}`);
      await c.connected;
      conns.push(c);
    }
    process.kill(victim, 'SIGKILL');
    const answers = await Promise.all(conns.map((c) => c.response));
    const lostBlocked = await blocked.response;
    t.equal(lostBlocked.status, 0, 'the request it was serving dies with it');
    const served = answers.filter((a) => a.status === 200).length;
    await until(async () => value(await scrape(acc.metricsPort), 'acceptor_workers{state="ready"}') === 2);
    const after = await scrape(acc.metricsPort);
    const lost = value(after, 'acceptor_connection_errors_total{reason="worker_exit"}')! - value(before, 'acceptor_connection_errors_total{reason="worker_exit"}')!;
    t.equal(served + (N - served), N);
    t.equal(lost, 1 + (N - served), `each lost connection is counted once (${lost} lost, ${served} of ${N} served elsewhere)`);
    if (transport === 'fdpass') t.equal(served, N, 'fdpass: every hand-off it never read is reclaimed and served by another worker');
    else t.ok(N - served <= 1, 'ipc: at most the one hand-off in flight is lost');
    t.equal(value(after, 'acceptor_queue_depth'), 0, 'nothing left waiting');
    const total = value(after, 'acceptor_connections_accepted_total')! - value(before, 'acceptor_connections_accepted_total')!;
    t.equal(total, N + 1, 'accepted = served + lost');
    t.same(await get(acc.port, '/'), { status: 200, body: 'done\n', headers: (await get(acc.port, '/')).headers }, 'slots are free: it serves on');
  });
}

t.test('fdpass: after 20,000 connections the primary and every worker hold the descriptors they started with', async (t) => {
  const acc = await start(['--workers', '2', '--transport', 'fdpass', '--host', '127.0.0.1']);
  t.teardown(() => acc.stop('SIGKILL'));
  const pids = [acc.proc.pid!, ...workerPids(acc)];
  t.equal(pids.length, 3);
  // Warm both workers up, then take the counts once they hold still (no connection in flight).
  for (let i = 0; i < 20; i++) t.equal((await get(acc.port, '/')).status, 200);
  const steady = async (): Promise<number[]> => {
    for (let prev = pids.map(openFds); ; ) {
      await sleep(300);
      const now = pids.map(openFds);
      if (now.every((n, i) => n === prev[i])) return now;
      prev = now;
    }
  };
  const base = await steady();
  const r = await storm({ host: '127.0.0.1', port: acc.port, mode: 'http', concurrency: 50, durationMs: 120_000, timeoutMs: 10_000, maxAttempts: 20_000 });
  t.equal(r.attempts, 20_000);
  t.equal(r.ok, 20_000, 'every one served');
  t.comment(`figure: 20,000 connections through fdpass in ${(r.elapsedMs / 1000).toFixed(1)} s`);
  const settled = await until(() => (pids.every((p, i) => openFds(p) === base[i]) ? true : undefined), 10_000).catch(() => false);
  t.ok(settled, `descriptors back to ${base.join('/')} (now ${pids.map(openFds).join('/')}) for primary/worker/worker`);
});

t.test('fdpass: a handler’s child process inherits none of the channel or connection descriptors', async (t) => {
  const acc = await start(['--workers', '1', '--transport', 'fdpass', '--handler', fixture('child-fds.mjs')]);
  t.teardown(() => acc.stop('SIGKILL'));
  // Several connections open at once, so the worker holds sockets beside the one asking.
  const held = Array.from({ length: 5 }, () => connect(acc.port, '127.0.0.1'));
  t.teardown(() => held.forEach((s) => s.destroy()));
  await until(() => held.every((s) => !s.connecting));
  const r = await get(acc.port, '/');
  const fds = r.body.trim().split('\n').map((l) => l.split(' ') as [string, string]);
  t.ok(fds.length >= 3, `the child's descriptors: ${fds.map((f) => f.join('→')).join(', ')}`);
  // Its own stdio are pipes (or sockets Node made for them) at 0–2; what the test's environment
  // passes down may be there too. A socket above 2 can only be the channel or a connection.
  t.same(fds.filter(([fd, target]) => Number(fd) > 2 && target.startsWith('socket:')), [], 'no socket of the worker’s');
});

t.test('fdpass: hand-offs reach the worker in the order the primary admitted them', async (t) => {
  const acc = await start(['--workers', '1', '--transport', 'fdpass', '--protocol', 'tcp', '--handler', fixture('tcp-seq.mjs')]);
  t.teardown(() => acc.stop('SIGKILL'));
  const N = 1000;
  const answers: Promise<string>[] = [];
  for (let i = 0; i < N; i++) {
    const s = connect(acc.port, '127.0.0.1');
    let data = '';
    answers.push(new Promise((resolve) => s.on('data', (d) => (data += d)).on('close', () => resolve(data.trim())).on('error', () => {})));
    // Connected before the next connects: the kernel queues them, and the primary accepts them, in this order.
    await new Promise((r) => s.once('connect', r));
  }
  const got = (await Promise.all(answers)).map(Number);
  t.same(got, Array.from({ length: N }, (_, i) => i), `${N} connections, each the worker's ${N}th in the same order`);
});
