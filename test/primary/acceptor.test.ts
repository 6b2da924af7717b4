// The library API (src/index.ts → startAcceptor) as the README shows it.
import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { fixture, until, readLines, type LogLine } from '../helpers/cli.js';
import { rawRequest } from '../helpers/http.js';
import { read, untilValue } from '../helpers/metrics.js';

t.test('library: after close() the process ends by itself, even with a connection waiting (no timer or handle left)', async (t) => {
  const holdFile = join(t.testdir(), 'release');
  const options = { port: 0, metricsPort: 0, workers: 1, maxConnections: 1, backlog: 4, queueTimeout: 60_000, drainTimeout: 1_000, logLevel: 'warn', handler: fixture('hold.mjs') };
  const proc = spawn(process.execPath, [fixture('library-primary.mjs')], { env: { ...process.env, LIBRARY_OPTIONS: JSON.stringify(options), HOLD_FILE: holdFile }, stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => void proc.kill('SIGKILL'));
  const exited = once(proc, 'exit') as Promise<[number | null, string | null]>;
  const said: LogLine[] = [];
  readLines(proc.stdout!, (l) => said.push(l));
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
