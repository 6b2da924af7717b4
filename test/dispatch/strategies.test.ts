// Every strategy serves; where workers accept, each refuses past --max-connections itself.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { start, run, fixture, listensOn, listeningSockets, workerPids } from '../helpers/cli.js';
import { get, rawRequest } from '../helpers/http.js';
import { scrape, value, untilValue } from '../helpers/metrics.js';
import { supportsReusePort } from '../../src/options.js';

const strategies = ['handoff', 'round-robin', 'shared', ...(supportsReusePort() ? ['reuseport'] : [])];

for (const strategy of strategies) {
  t.test(`${strategy} serves requests from its workers`, async (t) => {
    const acc = await start(['--strategy', strategy, '--host', '127.0.0.1']);
    t.teardown(() => acc.stop('SIGKILL'));
    const statuses = await Promise.all(Array.from({ length: 30 }, () => get(acc.port).then((r) => r.status)));
    t.same(statuses, Array(30).fill(200));
    t.equal((await get(acc.port, '/healthz')).body, '{"status":"ok"}\n');
    // Who accepts: the primary alone (handoff; round-robin, Node's own primary), or the workers
    // on the listening socket (shared: one, passed to each; reuseport: one each).
    t.equal(acc.lines.find((l) => l.msg === 'listening')!.tls, false, 'no TLS, and the start line says so');
    const workersListen = strategy === 'shared' || strategy === 'reuseport';
    const pids = workerPids(acc);
    t.equal(pids.length, 2);
    const held = pids.map((pid) => listeningSockets(pid, acc.port));
    t.same(held.map((s) => s.length > 0), [workersListen, workersListen], workersListen ? 'each worker holds a listening socket' : 'no worker holds a listening socket');
    if (!workersListen) t.ok(listensOn(acc.proc.pid!, acc.port), 'the primary holds it');
    // shared: one socket, the same in each worker; reuseport: one of its own in each worker (a
    // reuseport that listened without SO_REUSEPORT would share one socket, and still serve).
    if (workersListen) {
      t.same(held.map((s) => s.length), [1, 1], 'one listening socket in each worker');
      t.equal(new Set(held.flat()).size, strategy === 'shared' ? 1 : 2, strategy === 'shared' ? 'the same socket in both' : 'a socket of its own in each');
    }
    const { code } = await acc.stop('SIGTERM');
    t.equal(code, 0, 'clean stop');
  });
}

for (const strategy of strategies.filter((s) => s !== 'handoff')) {
  t.test(`${strategy}: a worker at --max-connections tells the next one busy`, async (t) => {
    const holdFile = join(t.testdir(), 'release');
    const acc = await start(['--strategy', strategy, '--host', '127.0.0.1', '--workers', '1', '--max-connections', '1', '--handler', fixture('hold.mjs')], { env: { HOLD_FILE: holdFile } });
    t.teardown(() => acc.stop('SIGKILL'));
    const first = rawRequest(acc.port);
    await first.connected;
    await untilValue(acc.metricsPort, 'acceptor_worker_connections{worker="1"}', 1);
    const second = await rawRequest(acc.port).response;
    t.equal(second.status, 503, 'busy');
    // The worker's own books: both accepted, one taken, one refused as full.
    const m = await scrape(acc.metricsPort);
    t.equal(value(m, 'acceptor_connections_accepted_total'), 2, 'accepted: 2');
    t.equal(value(m, 'acceptor_connections_handled_total{worker="1"}'), 1, 'handled: 1');
    t.equal(value(m, 'acceptor_connections_rejected_total{reason="worker_full"}'), 1, 'refused as worker_full: 1');
    t.equal(value(m, 'acceptor_connections_rejected_total{reason="shutting_down"}'), 0, 'none as shutting_down');
    writeFileSync(holdFile, '');
    t.equal((await first.response).status, 200);
  });
}

t.test('reuseport where Node cannot do it is a clear option error', { skip: supportsReusePort() ? `Node ${process.version} supports reusePort` : false }, async (t) => {
  const r = run(['--strategy', 'reuseport'], { wait: 'none' });
  t.equal((await r.exited).code, 2);
  t.match(r.stderr(), /^acceptor: invalid --strategy "reuseport": needs Node >= 22\.12/);
});

t.test('shared: a worker that cannot listen names the address, port and cause, and its slot retries until it can', async (t) => {
  // The primary checks the port and lets it go; the workers listen on it once their handler has
  // loaded (1.5 s here). The test takes the port in between.
  const acc = run(['--strategy', 'shared', '--host', '127.0.0.1', '--workers', '1', '--handler', fixture('slow-load.mjs')], { env: { LOAD_MS: '1500' }, wait: 'listening' });
  t.teardown(() => acc.stop('SIGKILL'));
  await acc.started;
  const squatter = createServer();
  t.teardown(() => squatter.close());
  await new Promise<void>((resolve) => squatter.listen({ host: '127.0.0.1', port: acc.port, exclusive: true }, resolve));
  const fatal = await acc.waitFor((l) => l.msg === 'worker cannot listen', 10_000);
  t.match(fatal, { level: 60, worker: 1, address: '127.0.0.1', port: acc.port, err: { code: 'EADDRINUSE' } }, 'the worker names the address, port and cause');
  const died = await acc.waitFor((l) => l.msg === 'worker died', 5000);
  t.match(died, { slot: 1, code: 1, reason: 'startup' }, 'a start-up failure: its slot backs off and retries');
  await new Promise((resolve) => squatter.close(resolve));
  await acc.waitFor((l) => l.msg === 'acceptor ready', 30_000);
  t.equal((await get(acc.port)).status, 200, 'the port free again, a worker listens and serves');
  t.equal(acc.proc.exitCode, null, 'the primary ran throughout');
});
