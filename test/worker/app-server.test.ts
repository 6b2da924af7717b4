// The app's own server given the worker's connections: at a drain, requests in flight and those
// arriving after it began are the last on their connection; malformed requests are answered and
// counted, unless the app answers them itself.
import t, { type Test } from 'tap';
import { fixture, start, until, type Running } from '../helpers/cli.js';
import { rawClient } from '../helpers/http.js';
import { untilValue, read } from '../helpers/metrics.js';

/** The in-flight request's body, echoed as it came. */
const ECHO = '{"a":1}';

/**
 * One worker serving the app, a keep-alive request in flight (POST /echo, the app awaiting the rest
 * of its body) and one whose headers are still coming; SIGHUP, and once the old worker drains, the
 * first one's body and the second one's headers end. (A request that ended by a timer, 800 ms, was
 * answered before the drain where the new worker took longer than that to start, CI once.)
 */
async function twoAtAReload(t: Test, transport: 'ipc' | 'fdpass'): Promise<{ acc: Running; busy: ReturnType<typeof rawClient>; partial: ReturnType<typeof rawClient>; mark: number }> {
  const acc = await start(['--workers', '1', '--transport', transport, fixture('apps/node-http.mjs')]);
  t.teardown(() => acc.stop('SIGKILL'));
  const busy = rawClient(acc.port);
  busy.s.write(`POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: ${ECHO.length}\r\n\r\n${ECHO.slice(0, 5)}`);
  const partial = rawClient(acc.port);
  partial.s.write('GET / HTTP/1.1\r\nHost: x\r\n');
  await untilValue(acc.metricsPort, 'acceptor_worker_connections{worker="1"}', 2);
  const mark = acc.lines.length;
  acc.proc.kill('SIGHUP');
  await acc.waitFor((l) => l.msg === 'draining', 10_000, mark);
  busy.s.write(ECHO.slice(5));
  partial.s.write('\r\n');
  return { acc, busy, partial, mark };
}

// Over ipc, where connections cannot move (fdpass hands them to the new worker: migrate.test.ts).
t.test('ipc: drain: a keep-alive request in flight, and one whose headers complete after the drain began, each end their connection', async (t) => {
  const { busy, partial } = await twoAtAReload(t, 'ipc');
  for (const [name, c, body] of [['in flight', busy, ECHO], ['completed during the drain', partial, 'node\n']] as const) {
    const { data } = await c.closed;
    t.match(data, /^HTTP\/1\.1 200 OK\r\n/, `${name}: answered`);
    t.match(data, /\r\nConnection: close\r\n/, `${name}: Connection: close`);
    t.ok(data.endsWith(`\r\n\r\n${body}`), `${name}: the whole body, and the server closed the connection`);
  }
});

t.test('fdpass: the same two at a reload each finish on the old worker, kept alive, and go on on the new one', async (t) => {
  const { acc, busy, partial, mark } = await twoAtAReload(t, 'fdpass');
  await acc.waitFor((l) => l.msg === 'reload done', 20_000, mark);
  for (const [name, c, body] of [['in flight', busy, ECHO], ['completed during the drain', partial, 'node\n']] as const) {
    await until(() => c.data().endsWith(body));
    t.match(c.data(), /^HTTP\/1\.1 200 OK\r\n/, `${name}: answered`);
    t.notMatch(c.data(), /\r\nConnection: close\r\n/i, `${name}: kept alive`);
    const before = c.data().length;
    c.s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => c.data().length > before && c.data().endsWith('node\n'));
    t.pass(`${name}: the next request on it answered by the new worker`);
  }
  t.equal(await read(acc.metricsPort, 'acceptor_connections_migrated_total'), 2, 'both moved');
  t.equal(await read(acc.metricsPort, 'acceptor_connections_accepted_total'), 2, 'no new connection');
  busy.s.destroy();
  partial.s.destroy();
});

t.test("malformed requests to an app's server: counted bad_request; answered 400, or by the app where it answers them itself", async (t) => {
  const acc = await start(['--workers', '1', fixture('apps/node-http.mjs')]);
  t.teardown(() => acc.stop('SIGKILL'));
  const bad = rawClient(acc.port);
  bad.s.write('GARBAGE\r\n\r\n');
  t.match((await bad.closed).data, /^HTTP\/1\.1 400 Bad Request\r\n/);
  t.equal(await read(acc.metricsPort, 'acceptor_connection_errors_total{reason="bad_request"}'), 1);

  const own = await start(['--workers', '1', fixture('apps/own-client-error.mjs')]);
  t.teardown(() => own.stop('SIGKILL'));
  const c = rawClient(own.port);
  c.s.write('GARBAGE\r\n\r\n');
  t.match((await c.closed).data, /^HTTP\/1\.1 400 Bad Request\r\nX-App: own\r\n/, "the app's own answer");
  t.equal(await read(own.metricsPort, 'acceptor_connection_errors_total{reason="bad_request"}'), 1, 'counted all the same');
});

t.test('--protocol that does not fit the server the app started: a warning naming both', async (t) => {
  const acc = await start(['--workers', '1', '--protocol', 'tcp', fixture('apps/node-http.mjs')]);
  t.teardown(() => acc.stop('SIGKILL'));
  t.match(acc.lines.find((l) => l.level === 40 && Number(l.worker) === 1), { protocol: 'tcp', appServer: 'Server', msg: "the app's server speaks HTTP but --protocol is tcp: refused clients get the tcp busy line, not a 503" });
});
