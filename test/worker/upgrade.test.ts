// Upgraded connections (WebSocket): through the app's own server (its 'upgrade' listeners) or the
// `upgrade` export of a listener app. They keep their slot until they close, show in their own
// gauge, are never written to by the acceptor's request timeouts, and end with the app's shutdown
// or, where the app does not close them, at --drain-timeout, counted.
import t from 'tap';
import WebSocket from 'ws';
import { io as ioClient } from 'socket.io-client';
import { fixture, sleep, start, until, within, workerPids, type Running } from '../helpers/cli.js';
import { get } from '../helpers/http.js';
import { read, scrape, untilValue, value } from '../helpers/metrics.js';

interface Client {
  ws: WebSocket;
  /** Messages received so far. */
  got: string[];
  /** The close code and reason, or the status of a refused upgrade. */
  ended: Promise<{ code: number; reason: string; ms: number } | { status: number; body: string }>;
  /**
   * Its handshake done; rejects if it failed or the client ended first. Listened for from the
   * start: a queued client may open while the test still awaits something else (the close of the
   * one ahead of it), and a listener added after 'open' would wait for ever.
   */
  open: Promise<void>;
}

function client(port: number): Client {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  const got: string[] = [];
  ws.on('message', (d) => got.push(String(d)));
  const t0 = Date.now();
  const ended = new Promise<Awaited<Client['ended']>>((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: String(reason), ms: Date.now() - t0 }));
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.on('error', () => {});
  });
  const open = new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
    void ended.then((e) => reject(new Error(`ended before it opened: ${JSON.stringify(e)}`)));
  });
  open.catch(() => {}); // a client never waited for open (the refused one) is no unhandled rejection
  return { ws, got, ended, open };
}

// Every wait on a client is bounded and named (within): ws emits neither 'open' nor 'error' for a
// refused handshake when 'unexpected-response' is listened to, so `open` ends on `ended` too.
const opened = (c: Client, acc: Running): Promise<void> => within(c.open, 'the WebSocket opens', acc);
const ended = (c: Client, acc: Running): Promise<Awaited<Client['ended']>> => within(c.ended, 'the WebSocket ends', acc);
async function echo(c: Client, text: string): Promise<string> {
  const n = c.got.length;
  c.ws.send(text);
  await until(() => c.got.length > n);
  return c.got[n]!;
}

/** Connects, sends `msg` to the app's echo, and resolves with its ack; a failed connect rejects. */
const acked = (s: ReturnType<typeof ioClient>, msg: string): Promise<string> =>
  new Promise((resolve, reject) => {
    s.on('connect', () => s.emit('echo', msg, resolve));
    s.on('connect_error', reject);
  });

for (const [name, file] of [['ws on the app\'s server (form 1)', 'ws.mjs'], ['a listener app\'s upgrade export (form 3)', 'ws-upgrade-export.mjs']] as const) {
  t.test(`${name}: echoes past the request timeouts, holds its slot, counted as upgraded; admission exact in front of it`, async (t) => {
    const acc = await start(['--workers', '1', '--max-connections', '1', '--backlog', '1', '--headers-timeout', '200ms', '--request-timeout', '200ms', fixture(`apps/${file}`)]);
    t.teardown(() => acc.stop('SIGKILL'));
    const a = client(acc.port);
    await opened(a, acc);
    t.equal(await echo(a, 'one'), 'echo one');
    // Ten times the request timeout, checked every 100 ms: a 408 written into the stream would
    // close it (the client sees an invalid frame).
    await sleep(2000);
    t.equal(await echo(a, 'two'), 'echo two', 'still open, no 408 in the stream');
    const m = await scrape(acc.metricsPort);
    t.same([value(m, 'acceptor_worker_connections{worker="1"}'), value(m, 'acceptor_worker_upgraded_connections{worker="1"}')], [1, 1], 'its slot, and the upgraded gauge');

    const b = client(acc.port);
    await untilValue(acc.metricsPort, 'acceptor_queue_depth', 1);
    const c = client(acc.port);
    t.same(await ended(c, acc), { status: 503, body: 'server busy\n' }, 'the third is told busy: the WebSocket holds the only slot');
    a.ws.close(1000, 'done');
    t.match(await ended(a, acc), { code: 1000 });
    await opened(b, acc);
    t.equal(await echo(b, 'three'), 'echo three', 'the waiting one gets the slot it freed');
    b.ws.close();
    await untilValue(acc.metricsPort, 'acceptor_worker_upgraded_connections{worker="1"}', 0);
    t.equal((await get(acc.port, '/')).status, 200, 'plain HTTP on the same app');
  });
}

t.test("SIGTERM with an open WebSocket: the app's shutdown sends its close frame, the acceptor exits 0", async (t) => {
  const acc = await start(['--workers', '1', fixture('apps/ws.mjs')]);
  t.teardown(() => acc.stop('SIGKILL'));
  const a = client(acc.port);
  await opened(a, acc);
  t.equal(await echo(a, 'x'), 'echo x');
  acc.proc.kill('SIGTERM');
  t.match(await ended(a, acc), { code: 1001, reason: 'server going away' });
  t.same(await within(acc.exited, 'the acceptor exits', acc), { code: 0, signal: null });
  t.ok(acc.lines.some((l) => l.raw === true && l.msg === 'app: closed'), "the app's server closed");
});

t.test('a WebSocket the app does not close at a reload is cut at --drain-timeout, counted drain_timeout, not worker_exit', async (t) => {
  const acc = await start(['--workers', '1', '--drain-timeout', '1500ms', fixture('apps/ws-upgrade-export.mjs')]);
  t.teardown(() => acc.stop('SIGKILL'));
  const a = client(acc.port);
  await opened(a, acc);
  const [old] = workerPids(acc);
  const sent = Date.now();
  acc.proc.kill('SIGHUP');
  const end = (await ended(a, acc)) as { code: number; ms: number };
  const cutAfter = Date.now() - sent;
  t.equal(end.code, 1006, 'cut, without a close frame');
  t.ok(cutAfter >= 1500, `not before --drain-timeout (${cutAfter} ms)`);
  await acc.waitFor((l) => l.msg === 'reload done');
  t.match(acc.lines.find((l) => l.msg === 'drain timeout; killing worker'), { slot: 1, active: 1 });
  t.notOk(workerPids(acc).includes(old!));
  const m = await scrape(acc.metricsPort);
  t.same([value(m, 'acceptor_connection_errors_total{reason="drain_timeout"}'), value(m, 'acceptor_connection_errors_total{reason="worker_exit"}')], [1, 0]);
});

t.test('socket.io, websocket transport, 2 workers: sessions on both workers; SIGTERM: the app closes them, exit 0', async (t) => {
  const acc = await start(['--workers', '2', fixture('apps/socketio.mjs')]);
  t.teardown(() => acc.stop('SIGKILL'));
  const clients = Array.from({ length: 4 }, () => ioClient(`http://127.0.0.1:${acc.port}`, { transports: ['websocket'], reconnection: false }));
  const disconnects = clients.map((s) => new Promise<string>((resolve) => s.on('disconnect', (reason) => resolve(reason))));
  const acks = await within(Promise.all(clients.map((s, i) => acked(s, `m${i}`))), 'four acks', acc);
  const pids = new Set(acks.map((a) => /from (\d+)$/.exec(a)![1]));
  t.same(acks.map((a) => a.replace(/ from \d+$/, '')), ['echo m0', 'echo m1', 'echo m2', 'echo m3']);
  t.same([...pids].sort(), workerPids(acc).map(String).sort(), 'both workers hold sessions');
  await untilValue(acc.metricsPort, 'acceptor_worker_upgraded_connections{worker="1"}', 2);
  acc.proc.kill('SIGTERM');
  // What socket.io's clients report when its server closes under plain Node too.
  t.same(await within(Promise.all(disconnects), 'four disconnects', acc), ['transport close', 'transport close', 'transport close', 'transport close']);
  t.same(await within(acc.exited, 'the acceptor exits', acc), { code: 0, signal: null });
});

t.test("socket.io's default transports (polling, then upgrade) with one worker", async (t) => {
  const acc = await start(['--workers', '1', fixture('apps/socketio.mjs')]);
  t.teardown(() => acc.stop('SIGKILL'));
  const s = ioClient(`http://127.0.0.1:${acc.port}`, { reconnection: false });
  t.teardown(() => s.close());
  const ack = await within(acked(s, 'p'), 'the ack', acc);
  t.match(ack, /^echo p from \d+$/);
  await until(() => s.io.engine.transport.name === 'websocket');
  t.pass('upgraded from polling to websocket');
});

t.test('--idle-timeout on a WebSocket: pings keep it open past it; silence closes it, counted timeout', async (t) => {
  const acc = await start(['--workers', '1', '--idle-timeout', '1s', fixture('apps/ws.mjs')]);
  t.teardown(() => acc.stop('SIGKILL'));
  const a = client(acc.port);
  await opened(a, acc);
  const pinging = setInterval(() => a.ws.ping(), 250);
  await sleep(2500);
  clearInterval(pinging);
  // Timed from before the last message: the server's last write is after this, never before.
  const quiet = Date.now();
  t.equal(await echo(a, 'still'), 'echo still', 'open 2.5 s into a 1 s idle timeout: the pings moved bytes');
  const end = (await ended(a, acc)) as { code: number };
  const after = Date.now() - quiet;
  t.equal(end.code, 1006, 'then cut');
  t.ok(after >= 1000, `not before the idle timeout (${after} ms after the last traffic)`);
  t.equal(await read(acc.metricsPort, 'acceptor_connection_errors_total{reason="timeout"}'), 1);
});

t.test("a reload with an open WebSocket: the old worker's app sends its close frame; the client reconnects to the new worker", async (t) => {
  const acc = await start(['--workers', '1', fixture('apps/ws.mjs')]);
  t.teardown(() => acc.stop('SIGKILL'));
  const a = client(acc.port);
  await opened(a, acc);
  const [old] = workerPids(acc);
  const mark = acc.lines.length;
  acc.proc.kill('SIGHUP');
  t.match(await ended(a, acc), { code: 1001, reason: 'server going away' });
  await acc.waitFor((l) => l.msg === 'reload done', 15_000, mark);
  t.notOk(workerPids(acc).includes(old!), 'the old worker has exited');
  t.same(acc.lines.slice(mark).filter((l) => l.msg === 'worker stopped').map((l) => [l.reason, l.signal]), [['reload', null]], 'by the drain, not killed');
  const b = client(acc.port);
  await opened(b, acc);
  t.equal(await echo(b, 'again'), 'echo again');
  b.ws.close();
});
