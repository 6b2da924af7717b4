// Form 1: apps that start their own server, as each framework's docs write them, run unchanged.
import t from 'tap';
import { battery, type AppCase } from '../helpers/apps.js';

const APPS: AppCase[] = [
  { name: 'Express 5, app.listen(PORT)', file: 'express.mjs', root: 'express\n', shutdown: true },
  { name: 'Fastify 5, await fastify.listen({ port, host })', file: 'fastify.mjs', root: 'fastify\n', shutdown: true },
  { name: 'Koa 3, app.listen(PORT)', file: 'koa.mjs', root: 'koa\n', shutdown: true },
  { name: "Hono 4, @hono/node-server's serve({ fetch, port })", file: 'hono-serve.mjs', root: 'hono\n', shutdown: true },
  { name: 'node:http, server.listen(PORT)', file: 'node-http.mjs', root: 'node\n', shutdown: true },
];

for (const c of APPS) t.test(c.name, (t) => battery(t, c));
