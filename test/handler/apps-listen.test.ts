// Form 1: apps that start their own server, as each framework's docs write them, run unchanged.
import t from 'tap';
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
