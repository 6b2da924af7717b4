// A real Prometheus scrapes a real acceptor under load that causes rejections; every dashboard
// query and every alert expression returns data; promtool accepts the config and the rules.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { start, fixture, until, freeFixedPort } from '../helpers/cli.js';
import { get, rawRequest } from '../helpers/http.js';
import { makeCert, tlsRequest } from '../helpers/tls.js';
import { panels } from '../../grafana/dashboard.js';

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

interface Series {
  metric: Record<string, string>;
  value: [number, string];
}
interface Answer {
  status: string;
  data: { result: Series[] };
}

/** A legend as Grafana renders it: {{label}} replaced by the series' label value. */
const legend = (format: string, s: Series): string => format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, l: string) => s.metric[l] ?? '');

// Two acceptors with different limits and different load, scraped by one Prometheus: the
// dashboard must tell them apart in every panel, and each reading must be that instance's own.
t.test('two instances, one Prometheus: every dashboard query and alert returns data, and every panel reads per instance', { skip }, async (t) => {
  const holdFile = join(t.testdir(), 'never');
  const env = { HOLD_FILE: holdFile };
  // a: full and refusing. b: HTTPS, one connection held, nothing refused, other limits.
  const cert = makeCert(t.testdir());
  // The readings below come after many queries: a's queued connections must not reach the queue
  // timeout first, nor a worker slowed by a loaded machine be replaced by the watchdog.
  const a = await start(['--workers', '2', '--max-connections', '2', '--backlog', '2', '--queue-timeout', '10m', '--watchdog', '0', '--handler', fixture('hold.mjs')], { env });
  const b = await start(['--workers', '1', '--max-connections', '3', '--backlog', '5', '--handler', fixture('hold.mjs'), '--tls-cert', cert.cert, '--tls-key', cert.key], { env });
  t.teardown(() => (a.stop('SIGKILL'), b.stop('SIGKILL')));
  const A = `127.0.0.1:${a.metricsPort}`;
  const B = `127.0.0.1:${b.metricsPort}`;

  const dir = t.testdir();
  const promPort = await freeFixedPort();
  writeFileSync(join(dir, 'alerts.yml'), readFileSync(join(GRAFANA, 'alerts.yml')));
  writeFileSync(join(dir, 'prometheus.yml'), `global: { scrape_interval: 1s, evaluation_interval: 1s }\nrule_files: [alerts.yml]\nscrape_configs:\n  - job_name: cluster-acceptor\n    static_configs:\n      - targets: ['${A}', '${B}']\n`);
  t.equal(spawnSync('promtool', ['check', 'config', join(dir, 'prometheus.yml')]).status, 0, 'test config valid');
  const prom = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let promLog = '';
  prom.stderr!.on('data', (d: Buffer) => (promLog += d.toString()));
  t.teardown(() => prom.kill('SIGKILL'));

  const query = async (q: string): Promise<Answer> => JSON.parse((await get(promPort, `/api/v1/query?query=${encodeURIComponent(q)}`)).body) as Answer;
  await until(async () => {
    try {
      return (await query('up == 1')).data.result.length === 2;
    } catch {
      return false;
    }
  }, 20_000, 200).catch((e: Error) => {
    throw new Error(`${e.message}; prometheus said: ${promLog.slice(-2000)}`);
  });

  // a: every slot and the queue filled, then told busy for a few scrapes. b: one held.
  const held = [];
  for (let i = 0; i < 6; i++) {
    const h = rawRequest(a.port);
    await h.connected;
    held.push(h);
  }
  const heldB = tlsRequest(b.port, cert.ca);
  await heldB.secure;
  let busy = 0;
  const end = Date.now() + 6000;
  while (Date.now() < end) {
    if ((await rawRequest(a.port).response).status === 503) busy++;
    await new Promise((r) => setTimeout(r, 50));
  }
  t.ok(busy > 10, `${busy} connections told busy`);
  // Enough samples in every series, of both instances, for the rate windows below.
  await until(async () => {
    const r = (await query('count_over_time(acceptor_connections_accepted_total[1m])')).data.result;
    return r.length === 2 && r.every((s) => Number(s.value[1]) >= 6);
  }, 20_000, 250);

  const grafana = (e: string, instance = '.*', worker = '.*'): string =>
    e.replace(/\$__rate_interval/g, '15s').replace(/\$instance/g, instance).replace(/\$worker/g, worker);
  for (const p of panels.filter((p) => p.targets)) {
    const all: { legend: string; s: Series }[] = [];
    for (const q of p.targets!) {
      const r = await query(grafana(q.expr));
      t.equal(r.status, 'success', `valid: ${q.expr}`);
      t.ok(r.data.result.length > 0, `returns data: ${q.expr}`);
      for (const s of r.data.result) {
        t.ok(s.metric.instance === A || s.metric.instance === B, `${p.title}: ${q.expr} keeps the instance apart (${JSON.stringify(s.metric)})`);
        all.push({ legend: legend(q.legendFormat, s), s });
      }
      // One instance chosen: its series only, with the same values as in the "All" view.
      for (const inst of [A, B]) {
        // Grafana escapes a chosen value for the regex match.
        const one = await query(grafana(q.expr, inst.replace(/\./g, '\\\\.')));
        t.ok(one.data.result.every((s) => s.metric.instance === inst), `${p.title}: $instance=${inst} shows that instance only`);
      }
    }
    const legends = all.map((x) => x.legend);
    t.same(legends.length, new Set(legends).size, `${p.title}: every series has its own legend (${legends.join(' | ')})`);
  }

  // Readings that differ between the two and would be wrong if the instances were summed.
  const one = async (expr: string, inst: string, labels: Record<string, string> = {}): Promise<number | undefined> => {
    const r = await query(grafana(expr));
    const s = r.data.result.find((s) => s.metric.instance === inst && Object.entries(labels).every(([k, v]) => s.metric[k] === v));
    return s ? Number(s.value[1]) : undefined;
  };
  const target = (title: string, i = 0): string => panels.find((p) => p.title.startsWith(title))!.targets![i]!.expr;
  await until(async () => (await one(target('Connections per worker'), B, { worker: '1' })) === 1, 10_000, 250);
  t.equal(await one(target('Connections per worker'), A, { worker: '1' }), 2, 'a: worker 1 holds 2');
  t.equal(await one(target('Connections per worker'), A, { worker: '2' }), 2, 'a: worker 2 holds 2');
  const lifecycle = a.lines.filter((l) => /worker died|stalled|drain/.test(String(l.msg)));
  if (lifecycle.length) t.comment(`a's workers meanwhile: ${lifecycle.map((l) => JSON.stringify(l)).join('\n')}`);
  t.equal(await one(target('Connections per worker'), B, { worker: '1' }), 1, 'b: worker 1 holds 1, not summed with a’s worker 1');
  t.equal(await one(target('Connections per worker', 2), A), 2, 'a: max per worker 2');
  t.equal(await one(target('Connections per worker', 2), B), 3, 'b: max per worker 3');
  t.equal(await one(target('Acceptor queue', 0), A), 2, 'a: queue depth 2');
  t.equal(await one(target('Acceptor queue', 0), B), 0, 'b: queue depth 0');
  t.equal(await one(target('Acceptor queue', 1), A), 2, 'a: queue capacity 2');
  t.equal(await one(target('Acceptor queue', 1), B), 5, 'b: queue capacity 5');
  t.equal(await one(target('Workers by state'), A, { state: 'ready' }), 2, 'a: 2 workers ready');
  t.equal(await one(target('Workers by state'), B, { state: 'ready' }), 1, 'b: 1 worker ready');
  t.ok((await one(target('Rejections by reason'), A, { reason: 'queue_full' }))! > 0, 'a: refusing for queue_full');
  t.notOk(await one(target('Rejections by reason'), B, { reason: 'queue_full' }), 'b: refuses nothing');
  t.ok((await one(target('Rejected share'), A))! > 0, 'a: a share of its clients told busy');
  t.equal(await one(target('Rejected share'), B), 0, 'b: none of its clients told busy');

  const rules = readFileSync(join(GRAFANA, 'alerts.yml'), 'utf8');
  const exprs = [...rules.matchAll(/expr: (?:>-\n((?: {10}.*\n)+)|(.*)\n)/g)].map((m) => (m[1] ?? m[2])!.trim());
  t.equal(exprs.length, 5, 'five alert rules');
  for (const e of exprs) {
    const r = await query(signal(e));
    t.equal(r.status, 'success', `valid: ${signal(e)}`);
    t.ok(r.data.result.length > 0, `returns data: ${signal(e)}`);
  }
  const instances = (r: Answer): string[] => r.data.result.map((s) => s.metric.instance!);
  const rejecting = await query(exprs[0]!.replace(/\s+/g, ' ').replace(/\[5m\]/g, '[30s]'));
  t.same(instances(rejecting), [A], 'the rejection alert condition holds for the refusing instance only');
  const queueFull = await query(exprs[1]!);
  t.same(instances(queueFull), [A], 'the queue-near-capacity condition holds for the full instance only');
  // A fresh handshake, inside the panel's rate window.
  const fresh = tlsRequest(b.port, cert.ca);
  await fresh.secure;
  fresh.socket.destroy();
  await until(async () => ((await one(target('TLS handshakes'), B)) ?? 0) > 0, 10_000, 250);
  t.pass('b: its handshake time');
  t.equal(await one(target('TLS handshakes'), A), undefined, 'a: none, it serves plain text');
  for (const h of [...held, heldB]) h.socket.destroy();
});
