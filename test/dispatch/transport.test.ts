// Which transport runs: fdpass where the addon loads, ipc with one warning where it does not
// (PREBUILDS_ONLY=1 makes node-gyp-build skip the local build, as on a machine without one),
// and an explicit --transport fdpass that cannot load is a bad option.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { CLI, start } from '../helpers/cli.js';
import { get } from '../helpers/http.js';
import { scrape } from '../helpers/metrics.js';

const info = async (metricsPort: number): Promise<string> => /^acceptor_info\{.*\} 1$/m.exec(await scrape(metricsPort))?.[0] ?? '';

t.test('auto picks fdpass where the addon loads; acceptor_info and the log say so', async (t) => {
  const acc = await start([], { env: { ACCEPTOR_TRANSPORT: '' } });
  t.teardown(() => acc.stop('SIGKILL'));
  t.equal(acc.lines.find((l) => l.msg === 'listening')?.transport, 'fdpass');
  t.match(await info(acc.metricsPort), /transport="fdpass"/);
  t.equal((await get(acc.port, '/')).status, 200);
  t.same(acc.lines.filter((l) => (l.level ?? 0) >= 40), [], 'no warning');
});

t.test('--transport ipc where the addon loads: ipc, as asked, without a warning', async (t) => {
  const acc = await start(['--transport', 'ipc']);
  t.teardown(() => acc.stop('SIGKILL'));
  t.equal(acc.lines.find((l) => l.msg === 'listening')?.transport, 'ipc');
  t.match(await info(acc.metricsPort), /transport="ipc"/);
  t.equal((await get(acc.port, '/')).status, 200);
  t.same(acc.lines.filter((l) => (l.level ?? 0) >= 40), [], 'no warning');
});

t.test('auto without the addon: ipc, with one warning line that says why', async (t) => {
  const acc = await start([], { env: { PREBUILDS_ONLY: '1', ACCEPTOR_TRANSPORT: '' } });
  t.teardown(() => acc.stop('SIGKILL'));
  const warnings = acc.lines.filter((l) => (l.level ?? 0) >= 40);
  t.equal(warnings.length, 1, 'one warning');
  t.match(warnings[0]?.msg, /^fdpass transport unavailable, using ipc: native addon not loadable/);
  t.equal(acc.lines.find((l) => l.msg === 'listening')?.transport, 'ipc');
  t.match(await info(acc.metricsPort), /transport="ipc"/);
  t.equal((await get(acc.port, '/')).status, 200, 'and serves');
});

t.test('--transport fdpass without the addon: exit 2, one line naming the option and the cause', async (t) => {
  const r = spawnSync(process.execPath, [CLI, '--transport', 'fdpass', '--port', '0', '--metrics-port', '0'], { encoding: 'utf8', env: { ...process.env, PREBUILDS_ONLY: '1' }, timeout: 10_000 });
  t.equal(r.status, 2);
  t.match(r.stderr, /^acceptor: invalid --transport "fdpass": native addon not loadable \(No native build was found/);
  t.equal(r.stderr.trimEnd().split('\n').length, 1, 'one line');
  t.equal(r.stdout, '', 'nothing started');
  // The library API gets the same error, naming the option for a caller that handles it.
  const lib = spawnSync(process.execPath, ['--input-type=module', '-e', `import { chooseTransport } from ${JSON.stringify(new URL('./dispatch/transport.js', pathToFileURL(CLI)).href)}; try { chooseTransport('fdpass'); } catch (e) { console.log(e.name, e.option); }`], { encoding: 'utf8', env: { ...process.env, PREBUILDS_ONLY: '1' }, timeout: 10_000 });
  t.equal(lib.stdout, 'OptionError transport\n', `library: ${lib.stderr}`);
});

t.test('strategies where the workers accept have no hand-off transport', async (t) => {
  const acc = await start(['--strategy', 'shared']);
  t.teardown(() => acc.stop('SIGKILL'));
  t.equal(acc.lines.find((l) => l.msg === 'listening')?.transport, 'none');
  t.match(await info(acc.metricsPort), /transport="none"/);
});
