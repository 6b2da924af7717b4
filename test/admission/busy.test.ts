// "Server busy" on a real loopback socket, in process: the exact HTTP answer as a client parses
// it, the raw TCP line and reset, the linger bound on a client that never closes, and a client
// that resets mid-answer (no crash).
import t, { type Test } from 'tap';
import { createServer, connect, type Socket, type Server } from 'node:net';
import { get } from 'node:http';
import { once } from 'node:events';
import { busyFor, busyPayload, makeRefuse, TLS_BUSY_ALERT } from '../../src/admission/busy.js';
import { start, fixture, TRANSPORTS } from '../helpers/cli.js';
import { rawRequest } from '../helpers/http.js';
import { untilValue } from '../helpers/metrics.js';
import { connect as tlsConnect } from 'node:tls';

/** A loopback server that refuses every connection with `payload`; `sockets` are its own ends. */
async function refusing(t: Test, payload: Buffer | 'reset'): Promise<{ port: number; sockets: Socket[]; server: Server }> {
  const refuse = makeRefuse(payload);
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    refuse(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { port: (server.address() as { port: number }).port, sockets, server };
}

// Not events.once: it listens for 'error' too, which would hide a missing error listener.
const closed = (s: Socket): Promise<boolean> => new Promise((r) => s.on('close', r));

const read = (s: Socket): Promise<{ data: string; error?: string }> =>
  new Promise((resolve) => {
    let data = '';
    s.on('data', (d: Buffer) => (data += d.toString('latin1')));
    s.on('end', () => resolve({ data }));
    s.on('error', (e: NodeJS.ErrnoException) => resolve({ data, error: e.code }));
  });

t.test('HTTP: 503 with Retry-After, Connection: close and a text body, as an HTTP client reads it', async (t) => {
  const { port } = await refusing(t, busyPayload('http', 7, 'unused'));
  const res = await new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/', agent: false }, (r) => {
      let body = '';
      r.setEncoding('utf8');
      r.on('data', (d: string) => (body += d));
      r.on('end', () => resolve({ status: r.statusCode!, headers: r.headers, body }));
    }).on('error', reject);
  });
  t.equal(res.status, 503);
  t.equal(res.headers['retry-after'], '7');
  t.equal(res.headers.connection, 'close');
  t.equal(res.headers['content-type'], 'text/plain');
  t.equal(res.headers['content-length'], '12');
  t.equal(res.body, 'server busy\n');
  const raw = busyPayload('http', 7, 'unused') as Buffer;
  t.equal(raw.toString('latin1').split('\r\n\r\n').length, 2, 'one header block, one body');
});

t.test('TCP: the busy line, then the end of the stream', async (t) => {
  const { port } = await refusing(t, busyPayload('tcp', 1, 'BUSY try later\n'));
  const r = await read(connect(port, '127.0.0.1'));
  t.same(r, { data: 'BUSY try later\n' });
});

t.test('TCP with --tcp-busy reset: a reset and no bytes', async (t) => {
  t.equal(busyPayload('tcp', 1, 'reset'), 'reset');
  const { port } = await refusing(t, 'reset');
  const r = await read(connect(port, '127.0.0.1'));
  t.same(r, { data: '', error: 'ECONNRESET' });
});

t.test('a client that reads the answer but never closes is let go after the linger time', async (t) => {
  const { port, sockets } = await refusing(t, busyPayload('http', 1, ''));
  const c = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  t.teardown(() => c.destroy());
  c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  let got = '';
  c.on('data', (d: Buffer) => (got += d));
  await once(c, 'end');
  t.match(got, /^HTTP\/1\.1 503 /, 'the whole answer first');
  const ended = Date.now();
  const hadError = await Promise.race([closed(sockets[0]!), new Promise((r) => setTimeout(() => r('still open after 10 s'), 10_000).unref())]);
  const ms = Date.now() - ended;
  t.equal(hadError, false, 'the server end closed by itself, without an error');
  t.ok(ms >= 1800 && ms < 4000, `after the 2 s linger, not before (${ms} ms after the answer)`);
});

for (const transport of TRANSPORTS) {
  t.test(`${transport}: a refused client that keeps sending is read for the 2 s linger, then closed`, async (t) => {
    const dir = t.testdir();
    const acc = await start(['--workers', '1', '--max-connections', '1', '--backlog', '1', '--transport', transport, '--handler', fixture('hold.mjs')], { env: { HOLD_FILE: `${dir}/never` } });
    t.teardown(() => acc.stop('SIGKILL'));
    const held = [rawRequest(acc.port), rawRequest(acc.port)];
    await untilValue(acc.metricsPort, 'acceptor_queue_depth', 1);
    const c = connect({ port: acc.port, host: '127.0.0.1', allowHalfOpen: true });
    t.teardown(() => c.destroy());
    let got = '';
    c.on('data', (d: Buffer) => (got += d));
    c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await once(c, 'end');
    const answered = Date.now();
    t.match(got, /^HTTP\/1\.1 503 /, 'told busy');
    // Read and discarded while it lingers; once the server has closed, the next byte is reset.
    const reset = new Promise<number>((resolve) => c.on('error', () => resolve(Date.now() - answered)));
    const dribble = setInterval(() => c.write('x'), 100);
    const ms = await Promise.race([reset, new Promise<number>((r) => setTimeout(() => r(Infinity), 10_000).unref())]);
    clearInterval(dribble);
    t.ok(ms >= 1800 && ms < 4000, `closed after the 2 s linger, not before (${ms} ms after the answer)`);
    for (const h of held) h.socket.destroy();
  });
}

t.test('a client that resets while the answer is written: the error is swallowed, nothing crashes', async (t) => {
  const { port, sockets } = await refusing(t, busyPayload('http', 1, ''));
  const c = connect(port, '127.0.0.1');
  await once(c, 'connect');
  c.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n' + 'x'.repeat(65536));
  c.on('error', () => {});
  await new Promise((r) => c.once('data', r));
  const serverEnd = closed(sockets[0]!);
  c.resetAndDestroy();
  const hadError = await serverEnd;
  t.equal(hadError, true, 'the server end saw the reset as an error, and the process lives on');
});

t.test('TLS: the alert a TLS client reports at once; busyFor picks it only with a certificate', async (t) => {
  t.same(busyPayload('http', 1, 'x', 'reset'), 'reset');
  t.same(busyPayload('tcp', 1, 'x', 'alert'), TLS_BUSY_ALERT, 'for tcp over TLS too');
  const base = { protocol: 'http' as const, retryAfter: 1, tcpBusy: 'busy\r\n', tlsBusy: 'alert' as const };
  t.same(busyFor({ ...base, tlsCert: undefined }), busyPayload('http', 1, ''), 'no certificate: the plain 503');
  t.same(busyFor({ ...base, tlsCert: '/c.pem' }), TLS_BUSY_ALERT);
  t.same(busyFor({ ...base, tlsCert: '/c.pem', tlsBusy: 'reset' }), 'reset');
  const { port } = await refusing(t, TLS_BUSY_ALERT);
  const c = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false });
  const code = await new Promise<string | undefined>((r) => c.on('error', (e: NodeJS.ErrnoException) => r(e.code)));
  t.equal(code, 'ERR_SSL_TLSV1_ALERT_INTERNAL_ERROR');
});
