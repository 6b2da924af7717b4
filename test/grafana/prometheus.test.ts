// A real Prometheus scrapes a real acceptor under load that causes rejections; every dashboard
// query and every alert expression returns data; promtool accepts the config and the rules.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { start, fixture, until, freeFixedPort } from '../helpers/cli.js';
import { get, rawRequest } from '../helpers/http.js';
import { queries } from '../../grafana/dashboard.js';

const GRAFANA = fileURLToPath(new URL('../../grafana/', import.meta.url));
const have = (cmd: string): boolean => spawnSync(cmd, ['--version']).status === 0;
const installed = have('prometheus') && have('promtool');
// In CI a missing Prometheus is a failure: .ci/run installs it.
const skip = installed || process.env.CI ? false : 'prometheus/promtool not installed (apt-get install prometheus); CI installs them';

t.test('promtool accepts the shipped config and rules, and the rule unit tests pass', { skip }, async (t) => {
  for (const args of [['check', 'config', 'prometheus.yml'], ['check', 'rules', 'alerts.yml'], ['test', 'rules', 'alerts.test.yml']]) {
    const r = spawnSync('promtool', args, { cwd: GRAFANA, encoding: 'utf8' });
    t.equal(r.status, 0, `promtool ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  }
});

/** The left side of `<signal> > threshold`: what the alert watches. */
export function signal(expr: string): string {
  const flat = expr.replace(/\s+/g, ' ').trim();
  const head = flat.split(' and ')[0]!;
  const m = /^(.*) (>|<|==|!=|>=|<=) [-\d.e]+$/.exec(head);
  return m ? m[1]! : head;
}

t.test('every dashboard query and alert expression returns data from a real Prometheus', { skip }, async (t) => {
  const holdFile = join(t.testdir(), 'never');
  const acc = await start(['--workers', '2', '--max-connections', '2', '--backlog', '2', '--handler', fixture('hold.mjs')], { env: { HOLD_FILE: holdFile } });
  t.teardown(() => acc.stop('SIGKILL'));

  const dir = t.testdir();
  const promPort = await freeFixedPort();
  writeFileSync(join(dir, 'alerts.yml'), readFileSync(join(GRAFANA, 'alerts.yml')));
  writeFileSync(join(dir, 'prometheus.yml'), `global: { scrape_interval: 1s, evaluation_interval: 1s }\nrule_files: [alerts.yml]\nscrape_configs:\n  - job_name: cluster-acceptor\n    static_configs:\n      - targets: ['127.0.0.1:${acc.metricsPort}']\n`);
  t.equal(spawnSync('promtool', ['check', 'config', join(dir, 'prometheus.yml')]).status, 0, 'test config valid');
  const prom = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let promLog = '';
  prom.stderr!.on('data', (d: Buffer) => (promLog += d.toString()));
  t.teardown(() => prom.kill('SIGKILL'));

  const query = async (q: string): Promise<{ status: string; data: { result: unknown[] } }> => {
    const r = await get(promPort, `/api/v1/query?query=${encodeURIComponent(q)}`);
    return JSON.parse(r.body) as { status: string; data: { result: unknown[] } };
  };
  await until(async () => {
    try {
      return (await query('up')).data.result.length > 0;
    } catch {
      return false;
    }
  }, 20_000, 200).catch((e: Error) => {
    throw new Error(`${e.message}; prometheus said: ${promLog.slice(-2000)}`);
  });

  // Load that fills every slot and the queue, then gets told busy, for a few scrapes.
  const held = [];
  for (let i = 0; i < 6; i++) {
    const h = rawRequest(acc.port);
    await h.connected;
    held.push(h);
  }
  let busy = 0;
  const end = Date.now() + 6000;
  while (Date.now() < end) {
    if ((await rawRequest(acc.port).response).status === 503) busy++;
    await new Promise((r) => setTimeout(r, 50));
  }
  t.ok(busy > 10, `${busy} connections told busy`);
  // Enough samples in every series for the rate windows below.
  await until(async () => Number(((await query('count_over_time(acceptor_connections_accepted_total[1m])')).data.result[0] as { value: [number, string] } | undefined)?.value[1] ?? 0) >= 6, 20_000, 250);

  const grafanaVars = (e: string): string => e.replace(/\$__rate_interval/g, '15s').replace(/\$instance/g, '.*').replace(/\$worker/g, '.*');
  for (const q of queries()) {
    const r = await query(grafanaVars(q.expr));
    t.equal(r.status, 'success', `valid: ${q.expr}`);
    t.ok(r.data.result.length > 0, `returns data: ${q.expr}`);
  }
  const rules = readFileSync(join(GRAFANA, 'alerts.yml'), 'utf8');
  const exprs = [...rules.matchAll(/expr: (?:>-\n((?: {10}.*\n)+)|(.*)\n)/g)].map((m) => (m[1] ?? m[2])!.trim());
  t.equal(exprs.length, 5, 'five alert rules');
  for (const e of exprs) {
    const r = await query(signal(e));
    t.equal(r.status, 'success', `valid: ${signal(e)}`);
    t.ok(r.data.result.length > 0, `returns data: ${signal(e)}`);
  }
  const rejecting = await query(exprs[0]!.replace(/\s+/g, ' ').replace(/\[5m\]/g, '[30s]'));
  t.ok(rejecting.data.result.length > 0, 'the rejection alert condition holds under this load');
  const queueFull = await query(exprs[1]!);
  t.ok(queueFull.data.result.length > 0, 'the queue-near-capacity condition holds while the queue is full');
  for (const h of held) h.socket.destroy();
});
