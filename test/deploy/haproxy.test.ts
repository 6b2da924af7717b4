// deploy/haproxy/haproxy.cfg as shipped, with Debian's HAProxy, in front of two real acceptors on
// loopback: a full instance is routed around, both full gives the acceptor's own 503 with
// Retry-After, and SIGTERM to one under load fails no request.
import t, { type Test } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { start, fixture, until, freeFixedPort, type Running } from '../helpers/cli.js';
import { rawRequest, underLoad, type Pending } from '../helpers/http.js';
import { read } from '../helpers/metrics.js';

const CFG = fileURLToPath(new URL('../../deploy/haproxy/haproxy.cfg', import.meta.url));
const installed = spawnSync('haproxy', ['-v']).status === 0;
// In CI a missing HAProxy is a failure: .ci/run installs it.
const skip = installed || process.env.CI ? false : 'haproxy not installed (apt-get install haproxy); CI installs it';

async function haproxy(t: Test, a: Running, b: Running): Promise<number> {
  const port = await freeFixedPort();
  const env = { ...process.env, LISTEN: `127.0.0.1:${port}`, ACCEPTOR1: `127.0.0.1:${a.port}`, ACCEPTOR2: `127.0.0.1:${b.port}`, ACCEPTOR1_METRICS: String(a.metricsPort), ACCEPTOR2_METRICS: String(b.metricsPort), CHECK_INTER: '200ms' };
  const p = spawn('haproxy', ['-db', '-f', CFG], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr!.on('data', (d: Buffer) => (err += d));
  t.teardown(() => void p.kill('SIGKILL'));
  await until(async () => (await rawRequest(port, '/').response).status === 200, 10_000).catch(() => {
    throw new Error(`haproxy did not serve: ${err}`);
  });
  return port;
}

/** Fills one instance directly: its slots and its queue. */
async function fill(acc: Running, n: number): Promise<Pending[]> {
  const inUse = async (): Promise<number> => (await read(acc.metricsPort, 'acceptor_queue_depth')) + (await read(acc.metricsPort, 'acceptor_worker_connections{worker="1"}'));
  // HAProxy's last proxied request may still hold a slot until its close reaches the worker; a
  // fill that raced it would see one of its own requests told busy.
  await until(async () => (await inUse()) === 0);
  const held = Array.from({ length: n }, () => rawRequest(acc.port));
  await until(async () => (await inUse()) === n);
  return held;
}

const statuses = async (port: number, n: number): Promise<number[]> => {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await rawRequest(port, '/').response).status);
  return out;
};
const count = (xs: number[], v: number): number => xs.filter((x) => x === v).length;

t.test('one instance full: HAProxy sends its requests to the other; both full: the acceptor’s own 503 with Retry-After', { skip }, async (t) => {
  const dir = t.testdir();
  const [fileA, fileB] = [join(dir, 'a'), join(dir, 'b')];
  const args = ['--workers', '1', '--max-connections', '2', '--backlog', '2', '--host', '127.0.0.1', '--handler', fixture('hold.mjs')];
  const a = await start(args, { env: { HOLD_FILE: fileA } });
  const b = await start(args, { env: { HOLD_FILE: fileB } });
  t.teardown(() => (a.stop('SIGKILL'), b.stop('SIGKILL')));
  writeFileSync(fileA, '');
  writeFileSync(fileB, '');
  const port = await haproxy(t, a, b);
  unlinkSync(fileA); // from now on a holds what it takes
  const heldA = await fill(a, 4);
  const alone = await statuses(a.port, 10);
  t.equal(count(alone, 503), 10, 'against the full instance alone: every request told busy');
  const via = await statuses(port, 10);
  t.equal(count(via, 200), 10, `through HAProxy: every one served by the other (${via.join(' ')})`);
  t.comment(`figure: one of two instances full: ${count(alone, 503)}/10 told busy against it alone, ${count(via, 503)}/10 through HAProxy`);

  unlinkSync(fileB);
  const heldB = await fill(b, 4);
  const both = await Promise.all(Array.from({ length: 5 }, () => rawRequest(port, '/').response));
  t.same(both.map((r) => r.status), [503, 503, 503, 503, 503], 'both full: told busy');
  t.same(both.map((r) => r.headers['retry-after']), ['1', '1', '1', '1', '1'], "the acceptor's own answer, with Retry-After (not HAProxy's)");
  t.ok(both.every((r) => r.ms < 2000), `at once: ${both.map((r) => r.ms).join(', ')} ms`);
  writeFileSync(fileA, '');
  writeFileSync(fileB, '');
  t.same([...new Set((await Promise.all([...heldA, ...heldB].map((h) => h.response))).map((r) => r.status))], [200], 'what they held is served');
});

t.test('SIGTERM to one instance under load through HAProxy: no failed request', { skip }, async (t) => {
  const args = ['--workers', '1', '--host', '127.0.0.1'];
  const a = await start(args);
  const b = await start(args);
  t.teardown(() => (a.stop('SIGKILL'), b.stop('SIGKILL')));
  const port = await haproxy(t, a, b);
  const results = await underLoad(port, 4, async () => {
    a.proc.kill('SIGTERM');
    t.equal((await a.exited).code, 0, 'the instance drained and exited 0');
  }, 100);
  const failed = results.flatMap((r) => r.failed);
  t.same(failed, [], 'no request failed or was told busy');
  t.comment(`figure: SIGTERM to one of two instances behind HAProxy under 4 request loops: ${results.reduce((n, r) => n + r.ok, 0)} served, ${failed.length} failed`);
});
