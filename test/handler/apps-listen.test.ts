// Form 1: apps that start their own server, as each framework's docs write them, run unchanged.
import t from 'tap';
import { spawn } from 'node:child_process';
import { battery, type AppCase } from '../helpers/apps.js';
import { fixture, start, within } from '../helpers/cli.js';
import { rawClient } from '../helpers/http.js';
import { read } from '../helpers/metrics.js';

const APPS: AppCase[] = [
  { name: 'Express 5, app.listen(PORT)', file: 'express.mjs', root: 'express\n', shutdown: true },
  { name: 'Fastify 5, await fastify.listen({ port, host })', file: 'fastify.mjs', root: 'fastify\n', shutdown: true },
  { name: 'Koa 3, app.listen(PORT)', file: 'koa.mjs', root: 'koa\n', shutdown: true },
  { name: "Hono 4, @hono/node-server's serve({ fetch, port })", file: 'hono-serve.mjs', root: 'hono\n', shutdown: true },
  { name: 'node:http, server.listen(PORT)', file: 'node-http.mjs', root: 'node\n', shutdown: true },
];

for (const c of APPS) t.test(c.name, (t) => battery(t, c));

// What net.Server's own accept gives a connection from the server's options, a handed-over one
// gets too (handler/listen.ts adopt), in every strategy: here a half-open socket.
for (const strategy of ['handoff', 'shared'] as const) {
  t.test(`${strategy}: a node:net app with allowHalfOpen reads to its client's FIN, then answers, as under node`, async (t) => {
    const acc = await start(['--workers', '1', '--strategy', strategy, '--protocol', 'tcp', fixture('apps/net-half-open.mjs')]);
    t.teardown(() => acc.stop('SIGKILL'));
    const c = rawClient(acc.port);
    c.s.end('hello world');
    t.same(await within(c.closed.then((r) => r.data), 'the answer after the FIN', acc), 'got 11 bytes\n');
    t.equal(await read(acc.metricsPort, 'acceptor_connections_handled_total{worker="1"}'), 1);
  });
}

// pauseOnConnect and highWaterMark: the app's socket has read nothing until the app resumes it, and
// has the app's buffer size, exactly as under node (the same app run by node itself is the reference).
const PAUSED = '{"bytesRead":0,"flowing":false,"hwm":[1234,1234]}\nhello';
async function pausedAnswer(port: number): Promise<string> {
  const c = rawClient(port);
  c.s.end('hello');
  return (await c.closed).data;
}
t.test('node itself: the paused app reads nothing for 300 ms, then echoes (the reference)', async (t) => {
  const app = spawn(process.execPath, [fixture('apps/net-paused.mjs')], { env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => void app.kill('SIGKILL'));
  const port = await within(new Promise<number>((r) => app.stdout.on('data', (d: Buffer) => { const m = /listening on (\d+)/.exec(String(d)); if (m) r(Number(m[1])); })), 'the app listening');
  t.equal(await within(pausedAnswer(port), 'the answer'), PAUSED);
});
for (const args of [['--strategy', 'handoff', '--transport', 'fdpass'], ['--strategy', 'handoff', '--transport', 'ipc'], ['--strategy', 'shared'], ['--strategy', 'round-robin']]) {
  t.test(`${args.join(' ')}: a node:net app with pauseOnConnect and highWaterMark gets a socket paused and sized as under node`, async (t) => {
    const acc = await start(['--workers', '1', ...args, '--protocol', 'tcp', fixture('apps/net-paused.mjs')]);
    t.teardown(() => acc.stop('SIGKILL'));
    t.equal(await within(pausedAnswer(acc.port), 'the answer', acc), PAUSED);
    t.equal(await read(acc.metricsPort, 'acceptor_connections_handled_total{worker="1"}'), 1);
  });
}
