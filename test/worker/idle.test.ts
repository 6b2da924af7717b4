// --idle-timeout: a connection without traffic for that long is closed and counted as a timeout,
// not sooner and not much later; traffic keeps it open. HTTP and raw TCP alike.
import t from 'tap';
import { connect } from 'node:net';
import { join } from 'node:path';
import { start, fixture } from '../helpers/cli.js';
import { rawRequest } from '../helpers/http.js';
import { read } from '../helpers/metrics.js';

const IDLE = 1000;
const TIMEOUTS = 'acceptor_connection_errors_total{reason="timeout"}';

t.test('http: a request its handler never answers is closed after the idle timeout', async (t) => {
  const acc = await start(['--workers', '1', '--idle-timeout', `${IDLE}ms`, '--handler', fixture('hold.mjs')], { env: { HOLD_FILE: join(t.testdir(), 'never') } });
  t.teardown(() => acc.stop('SIGKILL'));
  const before = await read(acc.metricsPort, TIMEOUTS);
  const r = await rawRequest(acc.port, '/').response;
  t.equal(r.status, 0, 'no answer, the connection closed');
  t.ok(r.ms >= IDLE - 50 && r.ms < IDLE * 2.5, `after ${r.ms} ms (idle timeout ${IDLE} ms)`);
  t.equal((await read(acc.metricsPort, TIMEOUTS)) - before, 1, 'counted once as a timeout');
});

t.test('http: a response with traffic every 300 ms outlives the idle timeout', async (t) => {
  const acc = await start(['--workers', '1', '--idle-timeout', `${IDLE}ms`, '--handler', fixture('trickle.mjs')], { env: { TRICKLE_MS: String(IDLE * 2) } });
  t.teardown(() => acc.stop('SIGKILL'));
  const r = await rawRequest(acc.port, '/').response;
  t.equal(r.status, 200);
  t.ok(r.ms >= IDLE * 2, `open for ${r.ms} ms`);
  t.match(r.body, /done\n/, 'complete');
  t.equal(await read(acc.metricsPort, TIMEOUTS), 0, 'no timeout counted');
});

t.test('tcp: a silent connection is closed after the idle timeout; a chatty one is not', async (t) => {
  const acc = await start(['--workers', '1', '--protocol', 'tcp', '--idle-timeout', `${IDLE}ms`]);
  t.teardown(() => acc.stop('SIGKILL'));
  const t0 = Date.now();
  const silent = connect(acc.port, '127.0.0.1');
  const chatty = connect(acc.port, '127.0.0.1');
  let echoed = '';
  chatty.setEncoding('utf8').on('data', (d: string) => (echoed += d));
  const talk = setInterval(() => chatty.write('.'), 300);
  const silentClosed = await new Promise<number>((r) => silent.on('close', () => r(Date.now() - t0)).on('error', () => {}));
  t.ok(silentClosed >= IDLE - 50 && silentClosed < IDLE * 2.5, `silent one closed after ${silentClosed} ms`);
  await new Promise((r) => setTimeout(r, IDLE));
  t.notOk(chatty.destroyed, `the chatty one is still open at ${Date.now() - t0} ms`);
  clearInterval(talk);
  t.ok(echoed.length >= 5, 'and was echoed all along');
  chatty.destroy();
  t.equal(await read(acc.metricsPort, TIMEOUTS), 1, 'one timeout counted');
});
