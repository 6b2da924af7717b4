// A reload under keep-alive load (fdpass): each idle connection of a draining worker goes back to
// the primary and on to a ready worker, with its unread bytes in the kernel. The client never
// reconnects, never sees `Connection: close`, and loses no request. Where connections cannot move
// (ipc, TLS) the drain tells each its last answer with `Connection: close` (pool.test.ts, below).
import t from 'tap';
import { connect, type Socket } from 'node:net';
import { fixture, reload, start, sleep, workerPids, type Running } from '../helpers/cli.js';
import { keepAliveClients, parseResponse } from '../helpers/http.js';
import { read, scrape, value } from '../helpers/metrics.js';
import { makeCert, skipOpenssl } from '../helpers/tls.js';

/** What the retiring workers said at their drain: connections open, and whether they hand them back. */
const drains = (acc: Running, from: number): { open: number; handingBack: unknown }[] =>
  acc.lines.slice(from).filter((l) => l.msg === 'draining').map((l) => ({ open: l.open as number, handingBack: l.handingBack }));

for (const app of [undefined, 'apps/express.mjs', 'apps/fastify.mjs']) {
  t.test(`fdpass, 50 keep-alive clients back to back through 3 SIGHUPs (${app ?? 'a request listener'}): none fails, none reconnects, every open connection moves`, async (t) => {
    const acc = await start(['--transport', 'fdpass', '--workers', '2', '--max-connections', '100', ...(app ? [fixture(app)] : [])]);
    t.teardown(() => acc.stop('SIGKILL'));
    let stop = false;
    const clients = keepAliveClients(acc.port, 50, () => stop);
    await sleep(300);
    const before = await scrape(acc.metricsPort);
    const mark = acc.lines.length;
    for (let i = 0; i < 3; i++) {
      await reload(acc);
      await sleep(200);
    }
    const after = await scrape(acc.metricsPort);
    stop = true;
    const r = await clients;
    t.same(r.failed, [], `${r.ok} requests, none failed`);
    t.equal(r.connects, 50, 'no client connected again');
    t.equal(r.toldClose, 0, 'no response said Connection: close');
    t.equal(value(after, 'acceptor_connections_accepted_total'), value(before, 'acceptor_connections_accepted_total'), 'the server accepted no connection during the reloads');
    const d = drains(acc, mark);
    t.equal(d.length, 6, 'six workers drained');
    t.ok(d.every((x) => x.handingBack === true), 'each handing its connections back');
    const moved = value(after, 'acceptor_connections_migrated_total')! - value(before, 'acceptor_connections_migrated_total')!;
    t.equal(moved, d.reduce((n, x) => n + x.open, 0), `migrated (${moved}) = the connections open at each drain`);
    t.ok(moved >= 3 * 50, 'each reload moved every connection at least once');
    for (const reason of ['worker_exit', 'drain_timeout', 'handoff_failed']) t.equal(value(after, `acceptor_connection_errors_total{reason="${reason}"}`), 0, `no ${reason}`);
  });
}

/** One keep-alive connection: sends `path`, resolves with the parsed answer. */
function exchange(s: Socket, path: string): Promise<ReturnType<typeof parseResponse>> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString('latin1');
      const head = buf.indexOf('\r\n\r\n');
      const len = head < 0 ? -1 : Number(/\r\ncontent-length: *(\d+)/i.exec(buf.slice(0, head))?.[1] ?? 0);
      if (head >= 0 && buf.length >= head + 4 + len) {
        s.off('data', onData);
        s.off('close', onClose);
        resolve(parseResponse(buf));
      }
    };
    const onClose = (): void => reject(new Error(`closed after ${JSON.stringify(buf)}`));
    s.on('data', onData);
    s.once('close', onClose);
    s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  });
}

t.test('a request in flight at the reload completes on its worker, without Connection: close; the next goes to the new worker on the same connection', async (t) => {
  const acc = await start(['--transport', 'fdpass', '--workers', '1', '--handler', fixture('pid.mjs')]);
  t.teardown(() => acc.stop('SIGKILL'));
  const [oldPid] = workerPids(acc);
  const s = connect(acc.port, '127.0.0.1');
  t.teardown(() => s.destroy());
  const slow = exchange(s, '/?ms=600');
  await sleep(150);
  const mark = acc.lines.length;
  acc.proc.kill('SIGHUP');
  const first = await slow;
  t.equal(first.status, 200);
  t.equal(first.body, String(oldPid), 'answered by the old worker');
  t.not(first.headers.connection, 'close', 'kept alive');
  await acc.waitFor((l) => l.msg === 'reload done', 20_000, mark);
  const [newPid] = workerPids(acc);
  t.not(newPid, oldPid);
  const next = await exchange(s, '/');
  t.equal(next.body, String(newPid), 'the next request, on the same connection, served by the new worker');
  t.equal(await read(acc.metricsPort, 'acceptor_connections_accepted_total'), 1, 'one connection accepted in all');
  t.equal(await read(acc.metricsPort, 'acceptor_connections_migrated_total'), 1, 'moved once');
});

t.test('the draining worker killed -9 right after handing its connections back: none is lost, none counted twice', async (t) => {
  const acc = await start(['--transport', 'fdpass', '--workers', '1', '--max-connections', '10', '--handler', fixture('pid.mjs')]);
  t.teardown(() => acc.stop('SIGKILL'));
  const [oldPid] = workerPids(acc);
  const conns = Array.from({ length: 10 }, () => connect(acc.port, '127.0.0.1'));
  t.teardown(() => conns.forEach((c) => c.destroy()));
  for (const c of conns) t.equal((await exchange(c, '/')).body, String(oldPid));
  const mark = acc.lines.length;
  acc.proc.kill('SIGHUP');
  // The idle connections are handed back before the worker logs its drain: kill it then, before it can exit by itself.
  await acc.waitFor((l) => l.msg === 'draining' && l.pid === oldPid, 20_000, mark);
  process.kill(oldPid!, 'SIGKILL');
  await acc.waitFor((l) => l.msg === 'reload done', 20_000, mark);
  const [newPid] = workerPids(acc);
  const answers = await Promise.all(conns.map((c) => exchange(c, '/')));
  t.same(answers.map((a) => a.body), Array(10).fill(String(newPid)), 'every connection served on by the new worker');
  const m = await scrape(acc.metricsPort);
  t.equal(value(m, 'acceptor_connections_migrated_total'), 10, 'ten moved');
  t.equal(value(m, 'acceptor_connection_errors_total{reason="worker_exit"}'), 0, 'none lost with the worker');
  // Exactly ten slots held (the moved ten): an eleventh connection is told busy at once, with --backlog 0 room in the queue.
  t.equal(value(m, 'acceptor_connections_accepted_total'), 10);
});

t.test('TLS cannot move: the drain answers each connection\'s next request with Connection: close, and none fails', { skip: skipOpenssl }, async (t) => {
  const cert = makeCert(t.testdir());
  const acc = await start(['--workers', '2', '--tls-cert', cert.cert, '--tls-key', cert.key]);
  t.teardown(() => acc.stop('SIGKILL'));
  let stop = false;
  const clients = keepAliveClients(acc.port, 20, () => stop, { tls: true });
  await sleep(300);
  const mark = acc.lines.length;
  for (let i = 0; i < 3; i++) {
    await reload(acc);
    await sleep(300);
  }
  stop = true;
  const r = await clients;
  t.same(r.failed, [], `${r.ok} requests on ${r.connects} connections, none failed`);
  t.ok(drains(acc, mark).every((x) => x.handingBack === false), 'no worker hands TLS connections back');
  t.ok(r.toldClose >= 3 * 20, `each reload told every connection to close with an answer (${r.toldClose} told)`);
});

t.test('SIGTERM during a reload\'s drain: the worker stops handing back (no worker follows); the response in flight says Connection: close, none is told busy', async (t) => {
  const acc = await start(['--transport', 'fdpass', '--workers', '1', '--handler', fixture('pid.mjs')]);
  t.teardown(() => acc.stop('SIGKILL'));
  const [oldPid] = workerPids(acc);
  const s = connect(acc.port, '127.0.0.1');
  t.teardown(() => s.destroy());
  const slow = exchange(s, '/?ms=1500');
  await sleep(100);
  const mark = acc.lines.length;
  acc.proc.kill('SIGHUP');
  await acc.waitFor((l) => l.msg === 'draining' && l.pid === oldPid && l.handingBack === true, 20_000, mark);
  acc.proc.kill('SIGTERM');
  const r = await slow;
  let after = '';
  s.on('data', (d: Buffer) => (after += d.toString('latin1')));
  const closed = new Promise((resolve) => s.once('close', resolve));
  t.equal(r.status, 200, 'the request in flight is answered');
  t.equal(r.headers.connection, 'close', 'as the last on its connection');
  await closed;
  t.equal(after, '', 'and the connection closes with nothing after it (handed back, the closing primary would have told it busy)');
  t.equal((await acc.exited).code, 0, 'exit 0');
  t.ok(acc.lines.slice(mark).some((l) => l.msg === 'draining for shutdown: no more connections handed back' && l.pid === oldPid), 'and the worker said so');
});
