// The user's handler: loaded in workers only; failures are logged with the path and survived.
import t from 'tap';
import { start, run, fixture, sleep, workerPids } from '../helpers/cli.js';
import { get, rawRequest } from '../helpers/http.js';
import { loadHandler } from '../../src/handler/load.js';
import { builtinHttp, builtinTcp } from '../../src/handler/builtin.js';

t.test('no --handler gives the built-in apps', async (t) => {
  t.equal(await loadHandler(undefined, 'http'), builtinHttp);
  t.equal(await loadHandler(undefined, 'tcp'), builtinTcp);
  await t.rejects(loadHandler(fixture('no-default.mjs'), 'http'), { message: /has no default export function/ });
});

t.test('built-in http app routes', async (t) => {
  const acc = await start(['--workers', '1']);
  t.teardown(() => acc.stop('SIGKILL'));
  t.equal((await get(acc.port, '/')).body, 'ok\n');
  t.equal((await get(acc.port, '/?x=1')).status, 200);
  t.equal((await get(acc.port, '/nope')).status, 404);
  const post = await rawRequest(acc.port, '/', '127.0.0.1').response;
  t.equal(post.status, 200);
});

t.test('a handler that throws at load: logged with its path, retried with backoff, primary stays up', async (t) => {
  const path = fixture('throws-at-load.mjs');
  const acc = run(['--workers', '1', '--handler', path], { wait: 'listening' });
  t.teardown(() => acc.stop('SIGKILL'));
  await acc.started;
  const fatal = await acc.waitFor((l) => l.msg === 'cannot load handler');
  t.equal(fatal.handler, path, 'the module path is logged');
  t.match(JSON.stringify(fatal.err), /handler exploded while loading/, 'with the cause');
  await sleep(2000);
  const deaths = acc.lines.filter((l) => l.msg === 'worker died');
  // 100ms, 200ms, 400ms, 800ms … : at most about 5 attempts in 2s, not hundreds.
  t.ok(deaths.length >= 2 && deaths.length <= 6, `backed off: ${deaths.length} restarts in 2s`);
  t.same(deaths.map((d) => d.reason), deaths.map(() => 'startup'));
  const delays = deaths.map((d) => Number(d.restartInMs));
  t.ok(delays.every((d, i) => i === 0 || d >= delays[i - 1]!), `delays grow: ${delays}`);
  t.equal(acc.proc.exitCode, null, 'the primary is still running');
  // While no worker is alive, a client is told busy (no_worker) rather than left waiting.
  const r = await rawRequest(acc.port).response;
  t.equal(r.status, 503);
});

t.test('a module without a default function is handled the same way', async (t) => {
  const acc = run(['--workers', '1', '--handler', fixture('no-default.mjs')], { wait: 'listening' });
  t.teardown(() => acc.stop('SIGKILL'));
  const fatal = await acc.waitFor((l) => l.msg === 'cannot load handler');
  t.match(JSON.stringify(fatal.err), /has no default export function/);
});

t.test('a handler that throws per request: 500 without details, and the worker survives', async (t) => {
  const acc = await start(['--workers', '1', '--handler', fixture('throws-per-request.mjs')]);
  t.teardown(() => acc.stop('SIGKILL'));
  const pids = workerPids(acc);
  for (const path of ['/throw', '/reject']) {
    const r = await get(acc.port, path);
    t.equal(r.status, 500, path);
    t.equal(r.body, 'internal server error\n', 'no stack trace, no message');
  }
  t.equal((await get(acc.port, '/')).status, 200, 'still serving');
  t.same(workerPids(acc), pids, 'same worker process');
  t.ok(acc.lines.some((l) => l.msg === 'handler failed' && JSON.stringify(l.err).includes('secret detail')), 'the error is logged on the server side');
});
