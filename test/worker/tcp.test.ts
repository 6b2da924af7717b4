// --protocol tcp: the handler gets the socket; busy is a line (or a reset).
import t, { type Test } from 'tap';
import { connect, type Socket } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { start, fixture, workerPids, until } from '../helpers/cli.js';
import { read } from '../helpers/metrics.js';

function talk(port: number, send?: string): { socket: Socket; connected: Promise<void>; closed: Promise<{ data: string; error?: string }> } {
  const socket = connect({ port, host: '127.0.0.1' });
  let data = '';
  let error: string | undefined;
  socket.setEncoding('utf8').on('data', (d: string) => (data += d));
  socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code));
  if (send) socket.write(send);
  const connected = new Promise<void>((r) => socket.once('connect', () => r()));
  const closed = new Promise<{ data: string; error?: string }>((r) => socket.on('close', () => r({ data, ...(error ? { error } : {}) })));
  return { socket, connected, closed };
}

t.test('built-in tcp app echoes', async (t) => {
  const acc = await start(['--protocol', 'tcp', '--host', '127.0.0.1']);
  t.teardown(() => acc.stop('SIGKILL'));
  const c = talk(acc.port, 'ping\n');
  await new Promise((r) => c.socket.once('data', r));
  c.socket.end();
  t.equal((await c.closed).data, 'ping\n');
});

/** One worker, one slot, one queue place: fills both with held clients and returns them. */
async function fullAcceptor(t: Test, tcpBusy: string) {
  const holdFile = join(t.testdir(), 'release');
  const acc = await start(['--protocol', 'tcp', '--host', '127.0.0.1', '--workers', '1', '--max-connections', '1', '--backlog', '1', '--tcp-busy', tcpBusy, '--handler', fixture('tcp-hold.mjs')], { env: { HOLD_FILE: holdFile } });
  t.teardown(() => acc.stop('SIGKILL'));
  const a = talk(acc.port);
  await a.connected;
  const b = talk(acc.port);
  await b.connected;
  return { port: acc.port, a, b, release: () => writeFileSync(holdFile, '') };
}

t.test('past slots and backlog a tcp client gets the busy line', async (t) => {
  const { port, a, b, release } = await fullAcceptor(t, 'BUSY try later\\n');
  const c = talk(port);
  t.same(await c.closed, { data: 'BUSY try later\n' }, 'third is told busy and closed');
  release();
  t.equal((await a.closed).data, 'hello\nbye\n', 'first served');
  t.equal((await b.closed).data, 'hello\nbye\n', 'queued one served after');
});

t.test('--tcp-busy reset refuses with a TCP reset', async (t) => {
  const { port, a, b, release } = await fullAcceptor(t, 'reset');
  const c = talk(port);
  const r = await c.closed;
  t.equal(r.data, '');
  t.equal(r.error, 'ECONNRESET');
  release();
  await a.closed;
  await b.closed;
});

t.test('a client reset on a handler without an error listener is counted; the worker survives', async (t) => {
  const holdFile = join(t.testdir(), 'never');
  const acc = await start(['--protocol', 'tcp', '--host', '127.0.0.1', '--workers', '1', '--handler', fixture('tcp-hold.mjs')], { env: { HOLD_FILE: holdFile } });
  t.teardown(() => acc.stop('SIGKILL'));
  const pids = workerPids(acc);
  const before = await read(acc.metricsPort, 'acceptor_connection_errors_total{reason="client_reset"}');
  const a = talk(acc.port);
  await new Promise((r) => a.socket.once('data', r));
  a.socket.resetAndDestroy();
  await a.closed;
  await until(async () => (await read(acc.metricsPort, 'acceptor_connection_errors_total{reason="client_reset"}')) === before + 1, 5000);
  const b = talk(acc.port);
  await new Promise((r) => b.socket.once('data', r));
  b.socket.destroy();
  t.same(workerPids(acc), pids, 'same worker');
  t.notOk(acc.lines.some((l) => l.msg === 'worker died'), 'no crash');
});

t.test('a tcp handler that throws: its connection is closed, counted handler_error and logged; the worker lives', async (t) => {
  const acc = await start(['--protocol', 'tcp', '--host', '127.0.0.1', '--workers', '1', '--handler', fixture('tcp-throws.mjs')]);
  t.teardown(() => acc.stop('SIGKILL'));
  const pids = workerPids(acc);
  for (let i = 1; i <= 2; i++) {
    const c = talk(acc.port);
    const end = await Promise.race([c.closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('still open after 10 s'), 10_000))]);
    c.socket.destroy();
    t.equal(end, 'closed', `connection ${i} closed by the worker`);
  }
  await until(async () => (await read(acc.metricsPort, 'acceptor_connection_errors_total{reason="handler_error"}')) === 2, 5000);
  const logged = acc.lines.filter((l) => l.msg === 'handler failed' && l.worker === 1);
  t.same(logged.map((l) => (l.err as { message?: string }).message), ['tcp handler exploded', 'tcp handler exploded'], 'each logged with its error');
  t.same(workerPids(acc), pids, 'the same worker serves on');
});
