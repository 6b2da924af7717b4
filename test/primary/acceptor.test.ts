// The library API (src/index.ts → startAcceptor) as docs/apps.md shows it.
import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { fixture, until, readLines, type LogLine } from '../helpers/cli.js';
import { rawRequest } from '../helpers/http.js';
import { read, untilValue } from '../helpers/metrics.js';

/** Runs a library fixture as a user's program: its stdout read as lines (its own and the acceptor's log). */
function library(t: Test, name: string, env: Record<string, string>): { proc: ChildProcess; lines: LogLine[]; exited: Promise<[number | null, string | null]> } {
  const proc = spawn(process.execPath, [fixture(name)], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => void proc.kill('SIGKILL'));
  const exited = once(proc, 'exit') as Promise<[number | null, string | null]>;
  const lines: LogLine[] = [];
  readLines(proc.stdout!, (l) => lines.push(l));
  return { proc, lines, exited };
}

t.test('library: after close() the process ends by itself, even with a connection waiting (no timer or handle left)', async (t) => {
  const holdFile = join(t.testdir(), 'release');
  const options = { port: 0, metricsPort: 0, workers: 1, maxConnections: 1, backlog: 4, queueTimeout: 60_000, drainTimeout: 1_000, logLevel: 'warn', handler: fixture('hold.mjs') };
  const { proc, lines: said, exited } = library(t, 'library-primary.mjs', { LIBRARY_OPTIONS: JSON.stringify(options), HOLD_FILE: holdFile });
  const ready = (await until(() => said.find((l) => l.fixture === 'ready'), 20_000))!;
  const port = Number(ready.port);
  const metricsPort = Number(ready.metricsPort);
  const held = rawRequest(port);
  await untilValue(metricsPort, 'acceptor_worker_connections{worker="1"}', 1);
  // Waiting in the queue: its 60 s timeout is armed when close() begins.
  const waiting = rawRequest(port);
  await untilValue(metricsPort, 'acceptor_queue_depth', 1);
  t.equal(await read(metricsPort, 'acceptor_queue_depth'), 1);
  proc.stdin!.end('close\n');
  t.equal((await waiting.response).status, 503, 'the waiting one is told busy at close');
  writeFileSync(holdFile, '');
  t.equal((await held.response).status, 200, 'the held one is served in the drain');
  const closed = (await until(() => said.find((l) => l.fixture === 'closed'), 20_000))!;
  const [code] = await Promise.race([exited, new Promise<[string]>((resolve) => setTimeout(() => resolve(['still running 10 s after close() returned']), 10_000))]);
  t.equal(code, 0, 'exits by itself with close()\'s code, well before the 60 s queue timeout');
  t.ok(Date.now() - Number(closed.at) < 10_000);
});

/** Runs test/fixtures/library-calls.mjs to its end: its own lines and the acceptor's. */
async function libraryCalls(t: Test, env: Record<string, string>): Promise<{ code: number | null; lines: LogLine[]; steps: LogLine[] }> {
  const { lines, exited } = library(t, 'library-calls.mjs', env);
  const [code] = await exited;
  return { code, lines, steps: lines.filter((l) => l.fixture === true) };
}

t.test('library: startAcceptor() in a cluster worker rejects, saying where it must run', async (t) => {
  const { code, steps } = await libraryCalls(t, { LIBRARY_STEP: 'in-worker' });
  t.same(steps, [{ fixture: true, step: 'in-worker', error: 'startAcceptor() must run in the primary process, not in a cluster worker' }]);
  t.equal(code, 0);
});

t.test('library: metrics() without metrics, reload() twice at once, close() twice, reload() while closing', async (t) => {
  const options = { port: 0, host: '127.0.0.1', metrics: false, workers: 1, logLevel: 'info' };
  const { code, lines, steps } = await libraryCalls(t, { LIBRARY_OPTIONS: JSON.stringify(options) });
  t.same(steps.map(({ fixture: _, ...s }) => s), [
    { step: 'ready', metricsPort: null },
    { step: 'metrics', error: 'metrics are off (--no-metrics)' },
    { step: 'reload twice', same: true },
    { step: 'close twice', same: true },
    { step: 'reload while closing' },
    { step: 'closed', code: 0 },
  ]);
  const said = (msg: string): number => lines.filter((l) => l.msg === msg).length;
  t.match(lines.find((l) => l.msg === 'acceptor ready'), { workers: 1 }, 'the ready line says how many workers are up');
  t.equal(said('rolling reload'), 1, 'one reload for the two calls');
  t.equal(said('reload done'), 1);
  t.equal(said('worker ready'), 2, 'the first worker and its one replacement');
  t.equal(said('shutting down: draining'), 1, 'one drain for the two calls');
  t.equal(code, 0);
});
