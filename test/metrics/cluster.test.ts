// The cluster-wide scrape: always answers, flags a worker that does not, passes promtool.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { start, until } from '../helpers/cli.js';
import { fixture } from '../helpers/cli.js';
import { get } from '../helpers/http.js';
import { scrape, value } from '../helpers/metrics.js';

t.test('a blocked worker does not fail the scrape: answered within 1s, worker flagged', async (t) => {
  const pidFile = join(t.testdir(), 'pid');
  const acc = await start(['--workers', '2', '--watchdog', '0', '--handler', fixture('block.mjs')], { env: { BLOCK_MS: '3000', BLOCK_PID_FILE: pidFile } });
  t.teardown(() => acc.stop('SIGKILL'));
  await scrape(acc.metricsPort);
  // Block one worker (the least-loaded pick goes to slot 1 first).
  void get(acc.port, '/block').catch(() => {});
  await until(() => existsSync(pidFile)); // it writes the file, then blocks
  const t0 = Date.now();
  const text = await scrape(acc.metricsPort);
  const ms = Date.now() - t0;
  t.ok(ms < 1000, `answered in ${ms}ms`);
  const up = [value(text, 'acceptor_scrape_worker_up{worker="1"}'), value(text, 'acceptor_scrape_worker_up{worker="2"}')];
  t.same([...up].sort(), [0, 1], `one worker flagged missing: ${up}`);
  const missing = up.indexOf(0) + 1;
  t.equal(value(text, `acceptor_scrape_worker_timeouts_total{worker="${missing}"}`), 1, 'its timeout counted');
  t.equal(value(text, `acceptor_scrape_worker_timeouts_total{worker="${3 - missing}"}`), undefined, 'the other never missed');
  const states = value(text, 'acceptor_workers{state="ready"}')! + value(text, 'acceptor_workers{state="stalled"}')!;
  t.equal(states, 2, "the primary's series are there (the blocked worker may already count as stalled)");
  t.ok(text.includes('process_cpu_user_seconds_total{worker="primary"}'), "the primary's process metrics are there");
});

t.test('--metrics-token-file: the token protects /metrics and is not on the command line', async (t) => {
  const dir = t.testdir({ token: 'from-a-file\n' });
  const acc = await start(['--workers', '1', '--metrics-token-file', `${dir}/token`]);
  t.teardown(() => acc.stop('SIGKILL'));
  t.equal((await get(acc.metricsPort, '/metrics')).status, 401, 'no token');
  t.equal((await get(acc.metricsPort, '/metrics', '127.0.0.1', { authorization: 'Bearer from-a-file' })).status, 200, 'the file’s token');
  t.notMatch(readFileSync(`/proc/${acc.proc.pid}/cmdline`, 'latin1'), /from-a-file/, 'not visible in ps');
});

t.test('metrics endpoint: token, 404, loopback by default', async (t) => {
  const acc = await start(['--workers', '1', '--metrics-token', 's3cret']);
  t.teardown(() => acc.stop('SIGKILL'));
  t.equal(acc.lines.find((l) => l.msg === 'metrics listening')!.address, '127.0.0.1');
  t.equal((await get(acc.metricsPort, '/metrics')).status, 401, 'no token');
  t.equal((await get(acc.metricsPort, '/metrics', '127.0.0.1', { authorization: 'Bearer wrong!' })).status, 401, 'wrong token');
  const text = await scrape(acc.metricsPort, 's3cret');
  t.match(text, /acceptor_connections_accepted_total/);
  t.notMatch(text, /acceptor_tls_/, 'no TLS series without TLS');
  t.equal((await get(acc.metricsPort, '/other')).status, 404);
});

t.test('the metrics port in use is a clear start-up error', async (t) => {
  const first = await start(['--workers', '1']);
  t.teardown(() => first.stop('SIGKILL'));
  const { run } = await import('../helpers/cli.js');
  const second = run(['--workers', '1', '--metrics-port', String(first.metricsPort)], { wait: 'none' });
  t.equal((await second.exited).code, 1);
  t.match(second.stderr().trim(), new RegExp(`^acceptor: cannot bind metrics listener 127\\.0\\.0\\.1:${first.metricsPort}: EADDRINUSE`));
  t.notOk(second.lines.some((l) => l.msg === 'worker ready'), 'no worker started');
});

const promtool = spawnSync('promtool', ['--version']).status === 0;
t.test('the whole live scrape passes promtool check metrics', { skip: promtool || process.env.CI ? false : 'promtool not installed (apt-get install prometheus); CI installs it' }, async (t) => {
  const acc = await start(['--workers', '2']);
  t.teardown(() => acc.stop('SIGKILL'));
  await get(acc.port);
  const text = await scrape(acc.metricsPort);
  const own = text.split('\n').filter((l) => /^(# (HELP|TYPE) )?acceptor_/.test(l)).join('\n') + '\n';
  const r = spawnSync('promtool', ['check', 'metrics'], { input: own, encoding: 'utf8' });
  t.equal(r.status, 0, `promtool: ${r.stdout}${r.stderr}`);
  // The whole scrape, prom-client's defaults included, as a user would lint it.
  const all = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  t.equal(all.status, 0, `promtool on the whole scrape: ${all.stdout}${all.stderr}`);
});
