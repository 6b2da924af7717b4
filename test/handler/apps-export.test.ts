// Forms 2 to 4: apps that export what serves them, as frameworks write them for other runtimes or
// for tests, run unchanged: a (req, res) listener, a fetch(request) object, a Koa app object, a
// Fastify instance (its server, once ready), a server that never listened.
import t from 'tap';
import { battery, type AppCase } from '../helpers/apps.js';
import { start, fixture } from '../helpers/cli.js';
import { get } from '../helpers/http.js';

const APPS: AppCase[] = [
  { name: 'Express 5, export default app: a (req, res) listener', file: 'express-export.mjs', root: 'express\n', shutdown: false },
  { name: 'Hono 4, export default app: an object with fetch(request)', file: 'hono-export.mjs', root: 'hono\n', shutdown: false },
  { name: "Koa 3, export default app: its app.callback()", file: 'koa-export.mjs', root: 'koa\n', shutdown: false },
  { name: "Fastify 5, export default fastify: its server once ready; the app's SIGTERM listener closes it and the worker ends by itself", file: 'fastify-export-shutdown.mjs', root: 'fastify\n', shutdown: true },
];

for (const c of APPS) t.test(c.name, (t) => battery(t, c));

t.test('form 4 streams the response body', async (t) => {
  const acc = await start(['--workers', '1', fixture('apps/hono-export.mjs')]);
  t.teardown(() => acc.stop('SIGKILL'));
  const r = await get(acc.port, '/stream');
  t.same([r.status, r.headers['transfer-encoding'], r.body], [200, 'chunked', 'chunk 0\nchunk 1\nchunk 2\n']);
});

t.test('form 2: an exported server is marked listening on the endpoint, its listening event fires', async (t) => {
  const acc = await start(['--workers', '1', fixture('apps/server-export.mjs')]);
  t.teardown(() => acc.stop('SIGKILL'));
  t.equal((await get(acc.port, '/')).body, `exported, listening=true port=${acc.port}\n`);
  t.ok(acc.lines.some((l) => l.raw === true && l.msg === 'app: listening event'));
  t.match(acc.lines.find((l) => l.msg === 'app loaded'), { form: 'server (exported)' });
  // No shutdown listener of the app's: the acceptor closes its server, and its close listeners run.
  acc.proc.kill('SIGTERM');
  t.same(await acc.exited, { code: 0, signal: null });
  t.same(acc.lines.filter((l) => l.raw === true).map((l) => l.msg), ['app: listening event', 'app: close event']);
});
