// The addon itself, with real descriptors and a real second process on the channel's other end
// (fd 4, as a worker gets it): order, EAGAIN, reclaim, truncation, descriptor counts, EMFILE.
import t from 'tap';
import { closeSync, fstatSync, readdirSync, readlinkSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { addon, child, files, seq } from '../helpers/fdpass.js';
import { openFds, sleep, until } from '../helpers/cli.js';

t.test('3,000 descriptors through a full channel: EAGAIN keeps the rest, all arrive once, in order', async (t) => {
  const N = 3000;
  const base = openFds(process.pid);
  const { fds, inodes } = files(t.testdir(), N);
  let writable = 0;
  const [ch, workerFd] = addon.channel(() => {}, () => writable++);
  // Nobody reads yet. One descriptor per message, the smallest message, until the channel's
  // send buffer is full (a socket pair is bounded by SO_SNDBUF, not max_dgram_qlen).
  let sent = 0;
  for (let k = 1; k === 1 && sent < N; ) {
    k = addon.send(ch, fds, seq(N), sent, 1);
    sent += k;
  }
  t.ok(sent > 0 && sent < N, `a full channel stops the send (EAGAIN after ${sent} messages)`);
  t.equal(addon.send(ch, fds, seq(N), sent, N - sent), 0, 'a batch on a full channel sends nothing, and is no error');
  t.throws(() => fstatSync(fds[0]!), { code: 'EBADF' }, "the primary's copies of sent descriptors are closed");
  t.doesNotThrow(() => fstatSync(fds[sent]!), 'unsent ones are still the primary’s');

  const c = child(workerFd, { MODE: 'recv' });
  t.teardown(() => c.proc.kill('SIGKILL'));
  const got: number[] = [];
  const gotInodes: number[] = [];
  // Resume where it stopped each time the channel is writable again, as the transport does.
  while (got.length < N) {
    await until(() => c.lines.some((l) => 'at' in l) || writable > 0, 10_000);
    for (let l = c.lines.shift(); l; l = c.lines.shift()) {
      if (!('at' in l)) continue;
      got.push(...(l.at as number[]));
      gotInodes.push(...(l.inodes as number[]));
      t.equal(l.missing, 0);
    }
    if (writable > 0 && sent < N) {
      writable = 0;
      const k = addon.send(ch, fds, seq(N), sent, N - sent);
      t.ok(k >= 0, 'no error, only EAGAIN');
      sent += k;
    }
  }
  t.equal(sent, N);
  t.same(got, Array.from({ length: N }, (_, i) => i), 'every descriptor arrived once, in the order sent');
  t.same(gotInodes, inodes, 'and each is the file it was');
  const r = addon.reclaim(ch);
  t.equal(r.fds.length, 0, 'nothing left unread');
  c.proc.kill('SIGKILL');
  await c.gone;
  t.equal(openFds(process.pid), base, 'no descriptor left open in the sender');
});

t.test('a worker that dies: its unread hand-offs come back in order, with its last close reports', async (t) => {
  const base = openFds(process.pid);
  const { fds, inodes } = files(t.testdir(), 600);
  let closed = 0;
  const [ch, workerFd] = addon.channel((n) => (closed += n), () => {});
  t.equal(addon.send(ch, fds, seq(600), 0, 600), 600);
  // It tells 7 closes, never reads, and exits: the reports must not be lost with it.
  const c = child(workerFd, { MODE: 'recv', REPORT: '7' });
  await c.next((l) => 'flushed' in l);
  t.same(c.lines.find((l) => 'flushed' in l), { flushed: true });
  await c.gone;
  const back = addon.reclaim(ch);
  t.equal(back.closed + closed, 7, 'its close reports, counted once');
  t.equal(back.fds.length, 600, 'every unread descriptor is back');
  t.same([...back.at], [...seq(600)], 'in the order sent, with their accept times');
  t.same([...back.fds].map((fd) => fstatSync(fd).ino), inodes, 'the same files');
  for (const fd of back.fds) closeSync(fd);
  t.equal(openFds(process.pid), base, 'nothing open once those are closed');
  t.throws(() => addon.reclaim(ch), /already closed/, 'a channel is reclaimed once');
  t.equal(addon.send(ch, fds, seq(1), 0, 1), -32, 'sending on it says EPIPE, and nothing is closed');
});

// A draining worker hands idle connections back (give): each arrives in the primary once, in order,
// the same file, with the closes it reported beside them; none is left open by the move.
t.test('give: what a live worker hands back is taken once, in order, beside its close reports', async (t) => {
  const base = openFds(process.pid);
  const { fds, inodes } = files(t.testdir(), 100);
  const taken: number[] = [];
  let closed = 0;
  let lost = 0;
  const [ch, workerFd] = addon.channel((n) => {
    closed += n;
    const m = addon.takeMoved(ch);
    if (m) (taken.push(...m.fds), (lost += m.lost));
  }, () => {});
  t.equal(addon.takeMoved(ch), null, 'nothing yet');
  t.equal(addon.send(ch, fds, seq(100), 0, 100), 100);
  const c = child(workerFd, { MODE: 'give', REPORT: '3' });
  const done = await c.next((l) => 'given' in l);
  t.same({ given: done.given, errors: done.errors, flushed: done.flushed }, { given: 100, errors: 0, flushed: true });
  await c.gone;
  await until(() => taken.length === 100 && closed === 3, 5000).catch(() => {});
  t.equal(closed, 3, 'its close reports, apart from what it handed back');
  t.equal(lost, 0);
  t.same(taken.map((fd) => fstatSync(fd).ino), inodes, 'every one back, in order, the same files');
  t.equal(addon.takeMoved(ch), null, 'taken once');
  const r = addon.reclaim(ch);
  t.same({ closed: r.closed, fds: r.fds.length, moved: r.moved.length, movedLost: r.movedLost }, { closed: 0, fds: 0, moved: 0, movedLost: 0 }, 'nothing left for the reclaim');
  for (const fd of taken) closeSync(fd);
  t.equal(openFds(process.pid), base, 'nothing open once those are closed');
});

t.test('give, then the worker dies before the primary reads: the reclaim has them, in order, with its reports', async (t) => {
  const base = openFds(process.pid);
  const { fds, inodes } = files(t.testdir(), 50);
  let woke = 0;
  const [ch, workerFd] = addon.channel((n) => (woke += n + 1), () => {});
  addon.wantReports(ch, false);
  t.equal(addon.send(ch, fds, seq(50), 0, 50), 50);
  const c = child(workerFd, { MODE: 'give', REPORT: '4' });
  await c.next((l) => 'given' in l);
  await c.gone;
  t.equal(woke, 0, 'not heard while the primary did not listen');
  const r = addon.reclaim(ch);
  t.equal(r.closed, 4, 'its close reports');
  t.equal(r.fds.length, 0, 'it had read every hand-off');
  t.equal(r.movedLost, 0);
  t.same([...r.moved].map((fd) => fstatSync(fd).ino), inodes, 'what it handed back, in order, the same files');
  for (const fd of r.moved) closeSync(fd);
  t.equal(openFds(process.pid), base, 'nothing open once those are closed');
});

// Close reports the primary does not read at once (between accept batches) fill the channel; the
// worker keeps the sum of those it could not send and sends it when the channel drains.
t.test('close reports told while the channel is full add up: none lost, none counted twice', async (t) => {
  let woke = 0;
  const [ch, workerFd] = addon.channel((n) => (woke += n), () => {});
  addon.wantReports(ch, false);
  const K = 5000;
  const c = child(workerFd, { MODE: 'recv', REPORTS: String(K) });
  t.teardown(() => c.proc.kill('SIGKILL'));
  const told = await c.next((l) => 'reported' in l);
  t.equal(told.pending, true, 'the channel filled part-way: the rest waited in the worker');
  let total = 0;
  await until(() => (total += addon.reports(ch)) >= K, 10_000).catch(() => {});
  await sleep(100);
  total += addon.reports(ch);
  t.equal(total + woke, K, `all ${K} add up, exactly`);
  addon.reclaim(ch);
});

t.test('out of descriptors in the worker: the kernel drops the rest, and the worker counts them', async (t) => {
  const { fds } = files(t.testdir(), 240);
  const [ch, workerFd] = addon.channel(() => {}, () => {});
  t.equal(addon.send(ch, fds, seq(240), 0, 240), 240);
  // Room for Node and a few more: one message of 240 cannot be installed whole (MSG_CTRUNC).
  const c = child(workerFd, { MODE: 'recv' }, ['prlimit', '--nofile=90']);
  t.teardown(() => c.proc.kill('SIGKILL'));
  const batch = await c.next((l) => 'at' in l);
  const got = (batch.at as number[]).length;
  t.ok(got < 240, `only ${got} installed`);
  t.equal(got + (batch.missing as number), 240, 'received + missing = sent: each one accounted for');
  addon.reclaim(ch);
});

// A batch's arrays are views over buffers made once: no backing store per wake-up.
t.test('listen: each batch is a view of its exact length over one kept buffer; a buffer the callback detaches is replaced, never written', async (t) => {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const batches: { fds: number[]; length: number; buffer: ArrayBuffer }[] = [];
  const l = addon.listen((server as unknown as { _handle: { fd: number } })._handle.fd, (fds) => {
    batches.push({ fds: [...fds], length: fds.length, buffer: fds.buffer as ArrayBuffer });
    // The first batch's buffer is taken away from the addon (transferred, so detached).
    if (batches.length === 1) structuredClone(fds.buffer, { transfer: [fds.buffer as ArrayBuffer] });
  });
  server.close();
  t.teardown(() => addon.unlisten(l));
  const clients: Socket[] = [];
  for (let i = 0; i < 3; i++) {
    clients.push(connect(port, '127.0.0.1').on('error', () => {}));
    await until(() => batches.length === i + 1);
  }
  t.same(batches.map((b) => b.length), [1, 1, 1], 'one connection each, arrays of that length');
  t.ok(batches.every((b) => fstatSync(b.fds[0]!).isSocket()), 'each a connected socket');
  t.equal(new Set(batches.map((b) => b.fds[0])).size, 3, 'three descriptors');
  t.equal(batches[0]!.buffer.byteLength, 0, 'the first buffer was detached');
  t.not(batches[1]!.buffer, batches[0]!.buffer, 'so the next batch came in a new one');
  t.equal(batches[2]!.buffer, batches[1]!.buffer, 'which is kept for the batches after it');
  for (const b of batches) addon.reset(b.fds[0]!);
  clients.forEach((c) => c.destroy());
});

t.test('listen: every connection arrives in a batch; unlisten closes the socket', async (t) => {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const got: number[] = [];
  let calls = 0;
  const l = addon.listen((server as unknown as { _handle: { fd: number } })._handle.fd, (fds, failed) => {
    calls++;
    t.equal(failed, 0);
    got.push(...fds);
  });
  server.close();
  const clients = Array.from({ length: 200 }, () => connect(port, '127.0.0.1').on('error', () => {}));
  await until(() => got.length === 200);
  t.ok(calls <= 200, `${calls} wake-ups for 200 connections`);
  for (const fd of got) t.ok(fstatSync(fd).isSocket());
  for (const fd of got) addon.reset(fd);
  addon.unlisten(l);
  await sleep(50);
  const err = await new Promise<string>((r) => connect(port, '127.0.0.1').on('error', (e: NodeJS.ErrnoException) => r(e.code!)).on('connect', () => r('connected')));
  t.equal(err, 'ECONNREFUSED', 'the listening socket is gone with the last descriptor');
  clients.forEach((c) => c.destroy());
});

t.test('listen out of descriptors: waiting connections are reset at once and counted, not left queued', async (t) => {
  const server = createServer();
  await new Promise<void>((r) => server.listen({ port: 0, host: '127.0.0.1', backlog: 511 }, r));
  const port = (server.address() as { port: number }).port;
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
  const c = child(fd, { MODE: 'listen' }, ['prlimit', '--nofile=60']);
  t.teardown(() => c.proc.kill('SIGKILL'));
  await c.next((l) => l.ready === true);
  server.close();
  const N = 120;
  const outcomes = await Promise.all(
    Array.from({ length: N }, () =>
      new Promise<string>((resolve) => {
        const s: Socket = connect(port, '127.0.0.1');
        // A reset shows as ECONNRESET, or as EPIPE when the client writes after it arrived.
        s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'EPIPE' ? 'ECONNRESET' : e.code!));
        s.setTimeout(5000, () => (s.destroy(), resolve('timeout')));
        s.on('connect', () => s.write('x')); // a reset shows as an error on a connected socket
      }),
    ),
  );
  const batches = c.lines.filter((l) => 'fds' in l);
  const held = batches.reduce((n, b) => n + (b.fds as number), 0);
  const failed = batches.reduce((n, b) => n + (b.failed as number), 0);
  t.ok(failed > 0, `EMFILE reached: ${held} held, ${failed} reset`);
  t.ok(batches.some((b) => b.errno === 24), 'and reported as EMFILE');
  t.equal(outcomes.filter((o) => o === 'ECONNRESET').length, failed, 'each reset one saw a reset');
  t.equal(outcomes.filter((o) => o === 'timeout').length, held, 'the held ones are still open (nothing else hangs)');
  t.equal(held + failed, N, 'every connection accounted for');
});

t.test('refuse: the answer arrives whole, then the socket lingers until the client closes (2 s at most)', async (t) => {
  const before = new Set(readdirSync('/proc/self/fd'));
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const busy = Buffer.from('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  const refuser = addon.refuser(busy);
  const l = addon.listen((server as unknown as { _handle: { fd: number } })._handle.fd, (fds) => fds.forEach((fd) => addon.refuse(refuser, fd)));
  server.close();
  // A client that sends a large request and keeps its side open: the answer must still arrive
  // (no reset for the unread request), and the primary's side lingers for it.
  const polite = connect(port, '127.0.0.1');
  polite.write('POST / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n' + 'x'.repeat(100_000));
  let got = '';
  polite.setEncoding('latin1').on('data', (d: string) => (got += d));
  await new Promise((r) => polite.once('end', r));
  t.equal(got, busy.toString('latin1'), 'the whole answer, then end of stream');
  await until(() => addon.lingering(refuser) === 1);
  polite.end();
  await until(() => addon.lingering(refuser) === 0, 2000);
  t.pass('closed once the client closed');
  // A client that never closes is cut after the linger (2 s).
  const stubborn = connect(port, '127.0.0.1').on('error', () => {});
  stubborn.on('data', () => {}).on('end', () => {}); // half-open: reads, never ends its side
  stubborn.setNoDelay(true);
  (stubborn as unknown as { allowHalfOpen: boolean }).allowHalfOpen = true;
  await until(() => addon.lingering(refuser) === 1);
  const t0 = Date.now();
  await until(() => addon.lingering(refuser) === 0, 5000);
  const ms = Date.now() - t0;
  t.ok(ms >= 1500 && ms < 3500, `a client that never closes is let go after the linger (${ms} ms)`);
  const closed = (s: Socket): Promise<unknown> => (s.closed ? Promise.resolve() : new Promise((r) => s.once('close', r)));
  polite.destroy();
  stubborn.destroy();
  await Promise.all([closed(polite), closed(stubborn)]);
  addon.unlisten(l);
  addon.closeRefuser(refuser);
  await sleep(50);
  const left = readdirSync('/proc/self/fd').filter((f) => !before.has(f)).map((f) => { try { return `${f}→${readlinkSync(`/proc/self/fd/${f}`)}`; } catch { return f; } });
  // Any descriptor this test opened (listener, epoll set, lingering sockets) and left open; the
  // one reading /proc/self/fd is the only new entry allowed.
  t.ok(left.length <= 1 && left.every((l) => l.includes('/proc/')), `nothing left open (${left.join(' ') || 'none'})`);
});

t.test('refuse with no payload: a reset at once', async (t) => {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const refuser = addon.refuser(null);
  const l = addon.listen((server as unknown as { _handle: { fd: number } })._handle.fd, (fds) => fds.forEach((fd) => addon.refuse(refuser, fd)));
  server.close();
  const code = await new Promise<string>((resolve) => {
    const s = connect(port, '127.0.0.1', () => s.write('hello'));
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code!)).on('close', () => resolve('closed without error'));
  });
  t.equal(code, 'ECONNRESET');
  t.equal(addon.lingering(refuser), 0, 'nothing lingers');
  addon.unlisten(l);
  addon.closeRefuser(refuser);
});
