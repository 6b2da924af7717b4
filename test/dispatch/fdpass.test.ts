// The fdpass transport: first its outbox in this process, on a real channel with a stand-in
// worker on the other end (a channel full part-way through a batch, which no test of a whole
// acceptor can make happen on purpose); then in the running acceptor: a worker's death,
// descriptor counts after a storm, nothing leaking into a handler's children, and hand-offs in
// admission order.
import t, { type Test } from 'tap';
import { closeSync, fstatSync, openSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { start, fixture, sleep, until, workerPids, openFds, fileWhenWritten, TRANSPORTS } from '../helpers/cli.js';
import { get, rawRequest, type Pending } from '../helpers/http.js';
import { scrape, value, untilValue } from '../helpers/metrics.js';
import { listenQueueDepth } from '../../src/metrics/kernel.js';
import { storm } from '../../bench/load/storm.js';
import { FdpassTransport } from '../../src/dispatch/fdpass.js';
import type { WorkerRecord } from '../../src/primary/pool.js';
import type { Detached } from '../../src/dispatch/transport.js';
import { addon, child, files } from '../helpers/fdpass.js';

const isOpen = (fd: number): boolean => {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
};

/** How many one-descriptor messages a fresh channel takes before EAGAIN (its SO_SNDBUF), counted on a scratch channel. */
function smallMessagesThatFit(): number {
  const [ch] = addon.channel(() => {}, () => {});
  let n = 0;
  for (;;) {
    const fd = openSync('/dev/null', 'r');
    if (addon.send(ch, Int32Array.of(fd), Float64Array.of(n), 0, 1) === 0) {
      closeSync(fd);
      break;
    }
    n++;
  }
  for (const fd of addon.reclaim(ch).fds) closeSync(fd);
  return n;
}

/**
 * A transport with one worker whose channel is full part-way through a batch: one-descriptor
 * messages up to one short of EAGAIN, then a 600-descriptor batch (three messages) of which the
 * channel takes the first, then 1,000 more while it is full (the outbox then outgrows its first
 * scratch arrays of 1,024). Nobody reads yet. The accept times sent are the descriptors'
 * sequence numbers.
 */
function fullMidBatch(t: Test): { transport: FdpassTransport; rec: WorkerRecord; workerFd: number; inodes: number[]; base: number } {
  const transport = new FdpassTransport(addon, 'reset');
  const base = openFds(process.pid);
  const fit = smallMessagesThatFit();
  const link = transport.prepareFork();
  const rec = { slot: 1 } as unknown as WorkerRecord;
  link.attach(rec);
  const { fds, inodes } = files(t.testdir(), fit - 1 + 600 + 1000);
  let i = 0;
  for (; i < fit - 1; i++) {
    transport.assign(rec, fds[i]!, i, 0);
    transport.flush();
  }
  t.notOk(fds.subarray(0, i).some(isOpen), `${i} one-descriptor messages sent, each closed here`);
  const batch = fds.subarray(i, i + 600);
  for (; i < fit - 1 + 600; i++) transport.assign(rec, fds[i]!, i, 0);
  transport.flush();
  const took = batch.filter((fd) => !isOpen(fd)).length;
  t.ok(took > 0 && took < 600, `the channel took part of the batch (${took} of 600), the rest wait`);
  t.ok(batch.subarray(took).every(isOpen), 'the part not taken is the end of the batch, still open here');
  for (; i < fds.length; i++) transport.assign(rec, fds[i]!, i, 0);
  transport.flush();
  t.ok(fds.subarray(fds.length - 1000).every(isOpen), 'assigned while the channel is full: they wait behind the rest');
  return { transport, rec, workerFd: link.fd, inodes, base };
}

/** detach()'s answer with its key arrays as plain arrays. */
const settled = (d: Detached<number>): object => ({ ...d, closedKeys: Array.from(d.closedKeys ?? []), movedKeys: Array.from(d.movedKeys ?? []) });

t.test('fdpass outbox: a batch the channel takes part of is sent on, whole and in order, once the worker reads', async (t) => {
  const { transport, rec, workerFd, inodes, base } = fullMidBatch(t);
  const c = child(workerFd, { MODE: 'recv' });
  t.teardown(() => void c.proc.kill('SIGKILL'));
  const at: number[] = [];
  const got: number[] = [];
  await until(() => {
    for (let l = c.lines.shift(); l; l = c.lines.shift()) {
      if (!('at' in l)) continue;
      at.push(...(l.at as number[]));
      got.push(...(l.inodes as number[]));
      t.equal(l.missing, 0);
    }
    return at.length >= inodes.length ? true : undefined;
  }, 10_000);
  t.same(at, inodes.map((_, i) => i), `all ${inodes.length} arrived once, in the order assigned`);
  t.same(got, inodes, 'each the file it was');
  t.same(settled(transport.detach(rec)), { back: [], closed: 0, moved: [], movedLost: 0, closedKeys: [], movedKeys: [] }, 'nothing left to reclaim');
  c.proc.kill('SIGKILL');
  await c.gone;
  t.equal(openFds(process.pid), base, 'no descriptor left open here');
});

t.test('fdpass outbox: a worker gone before reading gets back what it never read, then what waited, in order', async (t) => {
  const { transport, rec, inodes, base } = fullMidBatch(t);
  const { back, closed } = transport.detach(rec);
  t.equal(closed, 0);
  t.same(back.map((b) => b.at), inodes.map((_, i) => i), `all ${inodes.length} back, the channel's first, in the order assigned`);
  t.same(back.map((b) => fstatSync(b.item).ino), inodes, 'each the file it was');
  for (const b of back) closeSync(b.item);
  t.equal(openFds(process.pid), base, 'no descriptor left open here');
  t.same(settled(transport.detach(rec)), { back: [], closed: 0, moved: [], movedLost: 0, closedKeys: [], movedKeys: [] }, 'a second detach finds nothing, and does not touch the closed channel');
});

for (const transport of TRANSPORTS) {
  t.test(`${transport}: a worker killed with hand-offs it never read; each is counted once or handed on`, async (t) => {
    const dir = t.testdir();
    const pidFile = join(dir, 'pid');
    const acc = await start(['--workers', '2', '--max-connections', '50', '--transport', transport, '--handler', fixture('block.mjs'), '--watchdog', '0'], { env: { BLOCK_PID_FILE: pidFile, BLOCK_MS: '20000' } });
    t.teardown(() => acc.stop('SIGKILL'));
    const before = await scrape(acc.metricsPort);
    const blocked = rawRequest(acc.port, '/block');
    const victim = Number(await fileWhenWritten(pidFile));
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
    t.same(await get(acc.port, '/').then((r) => [r.status, r.body]), [200, 'done\n'], 'slots are free: it serves on');
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

/** Sets a process's soft descriptor limit (the hard one stays, so it can be raised again). */
function softNofile(pid: number, n: number | 'hard'): void {
  const hard = /Max open files\s+\d+\s+(\d+|unlimited)/.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))?.[1] ?? 'unlimited';
  const r = spawnSync('prlimit', ['--pid', String(pid), `--nofile=${n === 'hard' ? hard : n}:${hard}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`prlimit: ${r.stderr}`);
}

for (const transport of TRANSPORTS) {
  t.test(`${transport}: the primary out of descriptors: waiting clients are reset at once, counted accept_failed, and it recovers`, async (t) => {
    const holdFile = join(t.testdir(), 'release');
    const acc = await start(['--workers', '1', '--max-connections', '1', '--backlog', '1000', '--transport', transport, '--host', '127.0.0.1', '--handler', fixture('hold.mjs')], { env: { HOLD_FILE: holdFile } });
    t.teardown(() => acc.stop('SIGKILL'));
    const held = rawRequest(acc.port);
    await untilValue(acc.metricsPort, 'acceptor_worker_connections{worker="1"}', 1);
    const before = await scrape(acc.metricsPort);
    const primary = acc.proc.pid!;
    // Room for 10 more: queued connections are held by the primary, so the 11th accept fails.
    softNofile(primary, openFds(primary) + 10);
    const N = 40;
    const conns: Pending[] = [];
    for (let i = 0; i < N; i++) {
      const c = rawRequest(acc.port, `/${i}`);
      await c.connected.catch(() => {}); // reset before the client saw its connect complete
      conns.push(c);
    }
    let reset = 0;
    for (const c of conns) void c.response.then((r) => r.status === 0 && reset++);
    // Every connection has left the kernel's queue: taken into the acceptor's, or reset.
    await until(async () => reset > 0 && (await listenQueueDepth(acc.port)) === 0, 10_000);
    softNofile(primary, 'hard');
    const after = (await until(async () => { try { return await scrape(acc.metricsPort); } catch { return undefined; } }))!;
    const failed = value(after, 'acceptor_connection_errors_total{reason="accept_failed"}')! - value(before, 'acceptor_connection_errors_total{reason="accept_failed"}')!;
    const accepted = value(after, 'acceptor_connections_accepted_total')! - value(before, 'acceptor_connections_accepted_total')!;
    const queued = value(after, 'acceptor_queue_depth')!;
    t.ok(reset >= 20, `most of the ${N} were reset: ${reset}`);
    t.equal(queued, N - reset, 'the rest wait in the queue');
    t.equal(accepted, queued, 'accepted: exactly the waiting ones');
    if (transport === 'fdpass') t.equal(failed, reset, 'fdpass: each reset connection is counted once as accept_failed');
    // libuv's own EMFILE handling (uv__emfile_trick) resets the waiting connections and tells Node
    // nothing: on ipc they cannot be counted. docs/metrics.md says so (accept_failed).
    else t.ok(failed <= reset, `ipc: ${failed} counted for ${reset} reset`);
    writeFileSync(holdFile, '');
    const served = await Promise.all([held, ...conns].map((c) => c.response));
    t.equal(served.filter((r) => r.status === 200).length, queued + 1, 'once descriptors are back, every waiting one is served');
    t.equal((await get(acc.port, '/')).status, 200, 'and it accepts again');
  });
}

t.test('fdpass: a worker out of descriptors: the hand-offs it cannot take are counted handoff_failed, their slots freed', async (t) => {
  const holdFile = join(t.testdir(), 'release');
  const acc = await start(['--workers', '1', '--max-connections', '20', '--transport', 'fdpass', '--host', '127.0.0.1', '--handler', fixture('hold.mjs')], { env: { HOLD_FILE: holdFile } });
  t.teardown(() => acc.stop('SIGKILL'));
  const worker = workerPids(acc)[0]!;
  const before = await scrape(acc.metricsPort);
  softNofile(worker, openFds(worker) + 3);
  const N = 10;
  const conns: Pending[] = [];
  for (let i = 0; i < N; i++) {
    const c = rawRequest(acc.port, `/${i}`);
    await c.connected;
    conns.push(c);
  }
  // The kernel drops descriptors the worker cannot install (MSG_CTRUNC), which closes them.
  const dropped = (await until(async () => {
    const m = await scrape(acc.metricsPort);
    const inWorker = value(m, 'acceptor_worker_connections{worker="1"}')!;
    const failed = value(m, 'acceptor_connection_errors_total{reason="handoff_failed"}')! - value(before, 'acceptor_connection_errors_total{reason="handoff_failed"}')!;
    return inWorker + failed === N ? { inWorker, failed } : undefined;
  }, 10_000))!;
  t.ok(dropped.failed >= 5, `${dropped.failed} could not be installed, ${dropped.inWorker} were`);
  softNofile(worker, 'hard');
  writeFileSync(holdFile, '');
  const answers = await Promise.all(conns.map((c) => c.response));
  t.equal(answers.filter((a) => a.status === 0).length, dropped.failed, 'each uninstalled one was closed unanswered, and counted once');
  t.equal(answers.filter((a) => a.status === 200).length, dropped.inWorker, 'the others served');
  const after = await scrape(acc.metricsPort);
  t.equal(value(after, 'acceptor_queue_depth'), 0);
  // The primary freed each slot: 20 more can be held at once.
  unlinkSync(holdFile);
  const more = Array.from({ length: 20 }, () => rawRequest(acc.port));
  await untilValue(acc.metricsPort, 'acceptor_worker_connections{worker="1"}', 20);
  t.pass('every slot is free again: 20 held');
  writeFileSync(holdFile, '');
  t.same((await Promise.all(more.map((c) => c.response))).map((r) => r.status), Array(20).fill(200));
});
