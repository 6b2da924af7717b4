// The user's handler: loaded in workers only; failures are logged with the path and survived.
import t, { type Test } from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { start, run, fixture, tagged, until, workerPids, startThenBreakHandler, type LogLine } from '../helpers/cli.js';
import { get, rawClient, rawRequest } from '../helpers/http.js';
import { read } from '../helpers/metrics.js';
import { loadApp, stripsTypes } from '../../src/handler/load.js';
import { builtinHttp, builtinTcp } from '../../src/handler/builtin.js';

t.test('no --handler gives the built-in apps', async (t) => {
  t.same(await loadApp(undefined, 'http', undefined, 1000), { form: 'listener', listener: builtinHttp });
  t.same(await loadApp(undefined, 'tcp', undefined, 1000), { form: 'listener', listener: builtinTcp });
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

/** Starts the CLI with `handler` and waits for it to exit: a start that must fail. */
async function failedStart(t: Test, handler: string): Promise<{ code: number | null; line: string; left: number[]; lines: LogLine[] }> {
  const acc = run(['--workers', '2', '--handler', handler], { wait: 'none' });
  t.teardown(() => acc.stop('SIGKILL'));
  const { code } = await acc.exited;
  return { code, line: acc.stderr().trimEnd(), left: tagged(acc.tag), lines: acc.lines };
}

t.test('a handler that throws at load fails the start: exit 1, one line naming the module and the cause', async (t) => {
  const path = fixture('throws-at-load.mjs');
  const r = await failedStart(t, path);
  t.equal(r.code, 1);
  t.equal(r.line, `acceptor: cannot load handler ${path}: handler exploded while loading`);
  const fatal = r.lines.find((l) => l.level === 60 && Number(l.worker) > 0);
  t.match(fatal, { handler: path, err: { message: 'handler exploded while loading' } }, "the worker's own line: the module and the error, with its stack");
  t.match((fatal?.err as { stack?: string } | undefined)?.stack, /throws-at-load\.mjs/, 'the stack names the module');
  t.same(r.left, [], 'no process left');
});

const FORMS_HTTP = 'call listen() on process.env.PORT, or export default a server, a (req, res) listener or an object with fetch(request)';

t.test('a module that exports something else and does not listen fails the start at once: what it exports, and the four forms', async (t) => {
  const path = fixture('named-only.mjs');
  const r = await failedStart(t, path);
  t.equal(r.code, 1);
  t.equal(r.line, `acceptor: cannot load handler ${path}: the module exports no default and handler, and did not call listen(): ${FORMS_HTTP}`);
  await t.rejects(loadApp(fixture('no-default.mjs'), 'http', undefined, 1000), { message: `the module exports no default and notAHandler, and did not call listen(): ${FORMS_HTTP}` });
  await t.rejects(loadApp(fixture('apps/default-number.mjs'), 'http', undefined, 1000), { message: `the module exports a default number, and did not call listen(): ${FORMS_HTTP}` });
  await t.rejects(loadApp(fixture('apps/default-object.mjs'), 'tcp', undefined, 1000), { message: 'the module exports a default object (Router) and routes, and did not call listen(): call listen() on process.env.PORT, or export default a server or a (socket) listener' });
});

t.test('a syntax error names the file, line and column, as node does, for an ES module and CommonJS alike', async (t) => {
  for (const [file, line] of [['apps/syntax-error.mjs', 3], ['apps/syntax-error.cjs', 3]] as const) {
    const r = await failedStart(t, fixture(file));
    t.equal(r.code, 1);
    t.equal(r.line, `acceptor: cannot load handler ${fixture(file)}: missing ) after argument list (${fixture(file)}:${line}:11)`, file);
  }
});

t.test('what a module exports decides its form', async (t) => {
  const express = await loadApp(fixture('apps/express-export.mjs'), 'http', undefined, 5000);
  t.equal(express.form, 'listener', 'Express: a function');
  t.equal((await loadApp(fixture('apps/hono-export.mjs'), 'http', undefined, 5000)).form, 'fetch', 'Hono: fetch');
  t.equal((await loadApp(fixture('apps/koa-export.mjs'), 'http', undefined, 5000)).form, 'listener', "Koa: its callback()");
  t.match(await loadApp(fixture('apps/fastify-export.mjs'), 'http', undefined, 5000), { form: 'server', via: 'export' }, "Fastify: its server");
  t.match(await loadApp(fixture('apps/server-export.mjs'), 'http', undefined, 5000), { form: 'server', via: 'export' });
  const upgrade = await loadApp(fixture('apps/ws-upgrade-export.mjs'), 'http', undefined, 5000);
  t.same([upgrade.form, typeof (upgrade as { upgrade?: unknown }).upgrade], ['listener', 'function'], 'the upgrade export is taken');
});

t.test("tsc's CommonJS output (exports.default) is a handler", async (t) => {
  const acc = await start(['--workers', '1', '--handler', fixture('tsc-commonjs.cjs')]);
  t.teardown(() => acc.stop('SIGKILL'));
  t.equal((await get(acc.port, '/')).body, 'from exports.default\n');
});

t.test(`a .ts handler: ${stripsTypes() ? 'this Node strips types, so it serves' : 'this Node cannot run it, so the start fails saying what to do'}`, async (t) => {
  const path = fixture('typed.ts');
  if (stripsTypes()) {
    const acc = await start(['--workers', '1', '--handler', path]);
    t.teardown(() => acc.stop('SIGKILL'));
    t.equal((await get(acc.port, '/')).body, 'typed GET\n');
  } else {
    const r = await failedStart(t, path);
    t.equal(r.code, 1);
    t.equal(r.line, `acceptor: cannot load handler ${path}: Node ${process.version} does not run TypeScript: compile it (tsc) and pass the .js file, or use Node >= 22.18, which strips types`);
  }
});

t.test('a handler that stops loading after a healthy start: backoff doubles up to its cap, the primary stays up, clients told busy', async (t) => {
  const { acc, mark } = await startThenBreakHandler(t.testdir(), ['--restart-backoff-max', '400ms']);
  t.teardown(() => acc.stop('SIGKILL'));
  const deaths = (await until(() => {
    const d = acc.lines.slice(mark).filter((l) => l.msg === 'worker died');
    return d.length >= 6 ? d.slice(0, 6) : undefined;
  }, 20_000))!;
  // The first is the kill, within a second of the worker's ready (a failure: 100 ms); then its
  // replacements fail at load: the delay doubles, up to the cap.
  const delays = deaths.map((d) => Number(d.restartInMs));
  t.same(delays, [100, 200, 400, 400, 400, 400], `delays double up to the 400 ms cap: ${delays.join(', ')}`);
  t.same(deaths.slice(1).map((d) => d.reason), Array(5).fill('startup'), 'its replacements died at start-up');
  t.equal(acc.proc.exitCode, null, 'the primary is still running');
  const r = await rawRequest(acc.port).response;
  t.equal(r.status, 503, 'a client is told busy (no worker) rather than left waiting');
});

t.test('a worker that dies within a second of ready backs off too (a crash, not a start-up failure)', async (t) => {
  const marker = join(t.testdir(), 'crash');
  const acc = await start(['--workers', '1', '--handler', fixture('crash-soon.mjs')], { env: { MARKER: marker, CRASH_AFTER_MS: '300' } });
  t.teardown(() => acc.stop('SIGKILL'));
  writeFileSync(marker, '');
  const mark = acc.lines.length;
  process.kill(workerPids(acc)[0]!, 'SIGKILL');
  const deaths = (await until(() => {
    const d = acc.lines.slice(mark).filter((l) => l.msg === 'worker died');
    return d.length >= 4 ? d.slice(0, 4) : undefined;
  }, 20_000))!;
  t.same(deaths.map((d) => d.reason), ['crash', 'crash', 'crash', 'crash'], 'each had been ready');
  t.same(deaths.map((d) => d.code), [null, 3, 3, 3]);
  // The kill comes within a second of ready, and each replacement crashes 300 ms after it starts:
  // every one a failure, so the delay doubles. (One that ran healthy for over a second is replaced
  // at once: test/primary/pool.test.ts.)
  t.same(deaths.map((d) => Number(d.restartInMs)), [100, 200, 400, 800]);
});

t.test('the backoff holds while replacements run 1 to 10 s, and resets once one runs 10 s', async (t) => {
  const marker = join(t.testdir(), 'crash');
  writeFileSync(marker, '');
  // From each worker's load: under 1 s is a failure (the delay doubles); 1 to 10 s keeps the
  // delay where it was; over 10 s proves the slot healthy (replaced at once, and the count restarts).
  const acc = await start(['--workers', '1', '--handler', fixture('crash-soon.mjs')], { env: { MARKER: marker, CRASH_AFTER_MS: '300,1500,300,11000,300' } });
  t.teardown(() => acc.stop('SIGKILL'));
  const deaths = (await until(() => {
    const d = acc.lines.filter((l) => l.msg === 'worker died');
    return d.length >= 5 ? d.slice(0, 5) : undefined;
  }, 40_000))!;
  t.same(deaths.map((d) => d.reason), Array(5).fill('crash'), 'each had been ready');
  t.same(deaths.map((d) => Number(d.restartInMs)), [100, 100, 200, 0, 100]);
});

t.test('a reload whose handler no longer loads keeps the old workers serving', async (t) => {
  const marker = join(t.testdir(), 'broken');
  const acc = await start(['--workers', '1', '--handler', fixture('throws-if-marker.mjs')], { env: { MARKER: marker } });
  t.teardown(() => acc.stop('SIGKILL'));
  const pids = workerPids(acc);
  writeFileSync(marker, '');
  const mark = acc.lines.length;
  acc.proc.kill('SIGHUP');
  await acc.waitFor((l) => /reload stopped/.test(String(l.msg)), 10_000, mark);
  // Its death is logged, in the same turn, before the reload stops: no crash, no replacement.
  t.notOk(acc.lines.slice(mark).some((l) => l.msg === 'worker died'), 'not taken for a crash');
  t.equal((await get(acc.port, '/')).body, 'ok\n', 'the old worker serves on');
  t.same(workerPids(acc), pids, 'the same worker');
  t.equal(acc.proc.exitCode, null, 'and the primary runs');
});

/** One keep-alive request (no Connection: close); what came back once the server closed, or by `ms`. */
async function keepAliveRequest(port: number, path: string, ms = 10_000): Promise<{ raw: string; closedByServer: boolean }> {
  const c = rawClient(port);
  c.s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  const closedByServer = await Promise.race([c.closed.then(() => true), new Promise<false>((r) => setTimeout(r, ms, false).unref())]);
  c.s.destroy();
  return { raw: c.data(), closedByServer };
}

t.test('a handler that throws per request: 500 without details, and the worker survives', async (t) => {
  const acc = await start(['--workers', '1', '--handler', fixture('throws-per-request.mjs')]);
  t.teardown(() => acc.stop('SIGKILL'));
  const pids = workerPids(acc);
  const series = 'acceptor_connection_errors_total{reason="handler_error"}';
  const before = await read(acc.metricsPort, series);
  for (const path of ['/throw', '/reject']) {
    const r = await get(acc.port, path);
    t.equal(r.status, 500, path);
    t.equal(r.body, 'internal server error\n', 'no stack trace, no message');
    // Asked to keep the connection alive, the server still closes it: a handler that failed
    // may have left its state for that connection half-done.
    const ka = await keepAliveRequest(acc.port, path);
    t.match(ka.raw, /^HTTP\/1\.1 500 Internal Server Error\r\n/, `${path}, keep-alive: 500`);
    t.match(ka.raw, /\r\nconnection: close\r\n/i, `${path}, keep-alive: Connection: close`);
    t.match(ka.raw, /\r\ncontent-type: text\/plain\r\n/i, `${path}, keep-alive: plain text`);
    t.ok(ka.closedByServer, `${path}, keep-alive: the server closed the connection`);
  }
  // After its headers went out a 500 cannot be sent: the response is cut, never left hanging.
  const late = await keepAliveRequest(acc.port, '/late');
  t.match(late.raw, /^HTTP\/1\.1 200 OK\r\n/, '/late: its headers went out');
  t.match(late.raw, /partial/, '/late: and the start of its body');
  t.notMatch(late.raw, /\r\n0\r\n\r\n$/, '/late: no last chunk: the client can tell the body is cut');
  t.ok(late.closedByServer, '/late: the server closed the connection');
  t.equal((await get(acc.port, '/')).status, 200, 'still serving');
  t.same(workerPids(acc), pids, 'same worker process');
  t.ok(acc.lines.some((l) => l.msg === 'handler failed' && JSON.stringify(l.err).includes('secret detail')), 'the error is logged on the server side');
  t.equal((await read(acc.metricsPort, series)) - before, 5, 'handler_error +1 for each failure, none for the good one');
});

t.test('a handler that stops loading once one worker is ready: no failed start; that slot backs off and retries', async (t) => {
  const marker = join(t.testdir(), 'first');
  const acc = run(['--workers', '2', '--host', '127.0.0.1', '--handler', fixture('first-loads.mjs')], { env: { MARKER: marker }, wait: 'listening' });
  t.teardown(() => acc.stop('SIGKILL'));
  await acc.started;
  // The primary has taken a worker as ready once it logs so: only then do later ones fail.
  await acc.waitFor((l) => l.msg === 'worker ready');
  writeFileSync(`${marker}.ready`, '');
  const deaths = (await until(() => {
    const d = acc.lines.filter((l) => l.msg === 'worker died');
    return d.length >= 2 ? d.slice(0, 2) : undefined;
  }, 20_000))!;
  t.same(deaths.map((d) => [d.reason, Number(d.restartInMs)]), [['startup', 100], ['startup', 200]], 'a start-up failure, backed off');
  t.equal(acc.proc.exitCode, null, 'the primary runs: a worker had been ready');
  t.notOk(acc.lines.some((l) => l.msg === 'acceptor ready'), 'not every worker is ready');
  t.equal((await get(acc.port)).body, `served by ${readFileSync(marker, 'utf8')}\n`, 'the first worker serves');
});
