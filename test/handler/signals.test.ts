// The app's own SIGTERM / SIGINT listeners: never run by a signal sent to the worker (the
// primary drains), run once at the drain: SIGTERM's, or SIGINT's where it has none (PM2).
import t from 'tap';
import { fixture, sleep, start, workerPids, type Running } from '../helpers/cli.js';
import { get } from '../helpers/http.js';

const said = (acc: Running): string[] => acc.lines.filter((l) => l.raw === true && /^app: /.test(String(l.msg))).map((l) => String(l.msg));

t.test("a signal to the worker itself runs none of the app's listeners; the drain runs its SIGTERM ones once", async (t) => {
  const acc = await start(['--workers', '1', fixture('apps/signals.mjs')], { env: { APP_SIGNALS: 'SIGTERM,SIGINT,SIGHUP' }, group: true });
  t.teardown(() => acc.stop('SIGKILL'));
  const [pid] = workerPids(acc);
  for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.kill(pid!, s);
  await sleep(300);
  t.equal((await get(acc.port, '/')).body, 'signals\n', 'the worker serves on');
  t.same(workerPids(acc), [pid]);
  t.same(said(acc), ['app: listeners SIGTERM=1 SIGINT=1 SIGHUP=1'], "the app sees its own listeners, and none ran");
  // Ctrl-C at a terminal: SIGINT to the whole group, primary and worker alike.
  process.kill(-acc.proc.pid!, 'SIGINT');
  t.same(await acc.exited, { code: 0, signal: null });
  t.same(said(acc), ['app: listeners SIGTERM=1 SIGINT=1 SIGHUP=1', 'app: SIGTERM listener got SIGTERM'], 'its SIGTERM listener, once');
});

t.test("an app with only a SIGINT listener (PM2's stop signal) has it run at the drain", async (t) => {
  const acc = await start(['--workers', '1', fixture('apps/signals.mjs')], { env: { APP_SIGNALS: 'SIGINT' } });
  t.teardown(() => acc.stop('SIGKILL'));
  acc.proc.kill('SIGTERM');
  t.same(await acc.exited, { code: 0, signal: null });
  t.same(said(acc), ['app: listeners SIGTERM=0 SIGINT=1 SIGHUP=0', 'app: SIGINT listener got SIGINT']);
});
