// `npm run bench`: every scenario against every strategy and baseline, in one run, side by side.
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join, resolve } from 'node:path';
import { ROOT } from './root.js';
import { cannon } from './load/cannon.js';
import { storm, percentile, newTally, type Tally } from './load/storm.js';
import { keepAlive } from './load/keepalive.js';
import { fairness } from './load/fairness.js';
import { reloadedSoFar, reloadsDone, sampler } from './sample.js';
import { reconcile, serverDelta } from './accounting.js';
import { benchCert, findHaproxy, findNginx, startTarget, type Setup, type TargetSpec } from './targets.js';
import { existsSync, rmSync } from 'node:fs';
import { median as medianOf, ratios, table, writeReport, type Report, type RunResult, type Scenario } from './report.js';
import { supportsReusePort } from '../src/options.js';

export interface BenchOptions {
  quick: boolean;
  /** Seconds per run. */
  duration: number;
  connections: number;
  saturationConnections: number;
  workers: number;
  scenarios: Scenario[];
  targets: string[] | undefined;
  nginx: string | undefined;
  out: string;
  injectLoss: boolean;
  /** Each scenario runs every target this many times, interleaved; the median run is reported. */
  rounds: number;
  /** A real app (its path) served by every target in place of the bench's handler. */
  app: string | undefined;
}

const ALL_SCENARIOS: Scenario[] = ['keepalive', 'storm', 'tcp-storm', 'saturation', 'https-keepalive', 'https-storm', 'reload', 'fairness'];
/** The fairness scenario's targets; the per-client limit is the same 20 everywhere. */
const FAIRNESS_TARGETS = new Set(['handoff', 'handoff-fifo', 'handoff-limit', 'cluster-rr', 'nginx-limit', 'haproxy']);
const PER_CLIENT = 20;
/** Targets only some scenarios run: what the client-aware admission costs or buys. */
const ONLY: Record<string, Scenario[]> = { 'handoff-fifo': ['storm', 'tcp-storm', 'fairness'], 'handoff-limit': ['fairness'], 'nginx-limit': ['fairness'], haproxy: ['fairness'] };
/** Targets that reload on SIGHUP without a restart: the acceptor's handoff (each transport), cluster rr, nginx. */
const RELOAD_TARGETS = new Set(['handoff', 'handoff-ipc', 'cluster-rr', 'nginx']);
const RELOAD_EVERY_MS = 2000;
const HTTPS: Scenario[] = ['https-keepalive', 'https-storm'];
/** With --app: the scenarios that need no handler of the bench's own. */
const APP_SCENARIOS: Scenario[] = ['keepalive', 'storm', 'reload'];
/** Targets that serve HTTPS: the acceptor's strategies, cluster rr and nginx (ssl). */
const HTTPS_TARGETS = new Set(['handoff', 'round-robin', 'shared', 'handoff-ipc', 'cluster-rr', 'nginx']);

const USAGE = `Usage: npm run bench -- [options]
  --quick                    short run (one round of 2 s per run)
  --duration <s>             seconds per run (default 8, quick 2)
  --rounds <n>               runs per target, interleaved; the median is reported (default 3, quick 1)
  --connections <n>          concurrent connections for throughput and storms (default 100)
  --saturation-connections <n>  concurrent clients in the saturation scenario (default 400)
  --workers <n>              workers for the acceptor, the cluster baseline and nginx (default: available parallelism)
  --scenarios <a,b>          ${ALL_SCENARIOS.join(',')} (default: all)
  --targets <a,b>            handoff,round-robin,shared,reuseport,handoff-no-metrics,handoff-ipc,node-http,cluster-rr,nginx (default: all)
  --nginx <path>             nginx binary (default: nginx on PATH or /usr/sbin/nginx; skipped with a reason if missing)
  --out <dir>                where results go (default bench/results)
  --app <file>               a real app that listens on process.env.PORT (Express, Fastify, ...): the acceptor
                             serves it as its argument, cluster rr runs it under plain node:cluster, node:http as
                             \`node app.js\`; scenarios keepalive, storm and reload (GET /)
`;

export function parseBenchArgs(argv: string[]): BenchOptions | 'help' {
  const o: BenchOptions = {
    quick: false,
    duration: NaN,
    connections: 100,
    saturationConnections: 400,
    workers: availableParallelism(),
    scenarios: ALL_SCENARIOS,
    targets: undefined,
    nginx: undefined,
    out: join(ROOT, 'bench/results'),
    injectLoss: false,
    rounds: NaN,
    app: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`missing value for ${a}`);
      return v;
    };
    const num = (): number => {
      const v = Number(next());
      if (!Number.isFinite(v) || v <= 0) throw new Error(`invalid ${a}: expected a positive number`);
      return v;
    };
    if (a === '--help' || a === '-h') return 'help';
    else if (a === '--quick') o.quick = true;
    else if (a === '--duration') o.duration = num();
    else if (a === '--connections') o.connections = Math.round(num());
    else if (a === '--saturation-connections') o.saturationConnections = Math.round(num());
    else if (a === '--workers') o.workers = Math.round(num());
    else if (a === '--scenarios') {
      o.scenarios = next().split(',') as Scenario[];
      for (const s of o.scenarios) if (!ALL_SCENARIOS.includes(s)) throw new Error(`invalid --scenarios: unknown scenario ${s}`);
    } else if (a === '--targets') o.targets = next().split(',');
    else if (a === '--nginx') o.nginx = next();
    else if (a === '--out') o.out = next();
    else if (a === '--rounds') o.rounds = Math.round(num());
    else if (a === '--app') {
      o.app = resolve(next());
      if (!existsSync(o.app)) throw new Error(`invalid --app: no such file ${o.app}`);
    } else if (a === '--inject-loss') o.injectLoss = true; // for the harness's own test
    else throw new Error(`unknown option ${a}`);
  }
  if (Number.isNaN(o.duration)) o.duration = o.quick ? 2 : 8;
  if (Number.isNaN(o.rounds)) o.rounds = o.quick ? 1 : 3;
  // An app answers its own routes: only the scenarios that ask GET / of any HTTP server apply.
  if (o.app) o.scenarios = o.scenarios.filter((s) => APP_SCENARIOS.includes(s));
  return o;
}

function targetsFor(o: BenchOptions, scenario: Scenario): (TargetSpec & { id: string })[] {
  const all: (TargetSpec & { id: string })[] = [
    { id: 'handoff', name: 'handoff', kind: 'acceptor', strategy: 'handoff' },
    { id: 'round-robin', name: 'round-robin', kind: 'acceptor', strategy: 'round-robin' },
    { id: 'shared', name: 'shared', kind: 'acceptor', strategy: 'shared' },
    { id: 'reuseport', name: 'reuseport', kind: 'acceptor', strategy: 'reuseport' },
    { id: 'handoff-no-metrics', name: 'handoff (metrics off)', kind: 'acceptor', strategy: 'handoff', metrics: false },
    { id: 'handoff-ipc', name: 'handoff (ipc)', kind: 'acceptor', strategy: 'handoff', transport: 'ipc' },
    { id: 'handoff-fifo', name: 'handoff (--queue fifo)', kind: 'acceptor', strategy: 'handoff', args: ['--queue', 'fifo'] },
    { id: 'handoff-limit', name: `handoff (${PER_CLIENT} per client)`, kind: 'acceptor', strategy: 'handoff', limitPerClient: PER_CLIENT },
    { id: 'nginx-limit', name: `nginx (limit_conn ${PER_CLIENT})`, kind: 'nginx', limitPerClient: PER_CLIENT },
    { id: 'haproxy', name: `haproxy (src_conn_cur ${PER_CLIENT}) + cluster rr`, kind: 'haproxy', limitPerClient: PER_CLIENT },
    { id: 'node-http', name: 'node:http', kind: 'single' },
    { id: 'cluster-rr', name: 'cluster rr', kind: 'cluster-rr' },
    { id: 'nginx', name: 'nginx', kind: 'nginx' },
  ];
  return all.filter((t) => (o.targets ? o.targets.includes(t.id) : true) && !(t.id === 'handoff-no-metrics' && scenario === 'saturation') && (!HTTPS.includes(scenario) || HTTPS_TARGETS.has(t.id)) && (scenario !== 'reload' || RELOAD_TARGETS.has(t.id)) && (scenario !== 'fairness' || FAIRNESS_TARGETS.has(t.id)) && (!ONLY[t.id] || ONLY[t.id]!.includes(scenario)));
}

function setupFor(o: BenchOptions, scenario: Scenario, tls: Setup['tls']): Setup {
  if (scenario === 'fairness') return { workers: o.workers, backlog: 100, maxConnections: 50, handler: 'hello', cpuMs: 0 };
  return scenario === 'saturation'
    ? { workers: o.workers, backlog: 64, maxConnections: 8, handler: 'cpu', cpuMs: 2 }
    : { workers: o.workers, backlog: 511, maxConnections: 1024, handler: 'hello', cpuMs: 0, ...(HTTPS.includes(scenario) ? { tls } : {}) };
}

const emptyErrors = (): RunResult['errors'] => ({ refused: 0, reset: 0, timeout: 0, other: 0 });

function progress(done: number, total: number, label: string): void {
  const width = 30;
  const filled = Math.round((done / total) * width);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total} ${label}`;
  if (process.stderr.isTTY) process.stderr.write(`\r${bar.padEnd(90)}`);
  else process.stderr.write(`${bar}\n`);
}

async function runOne(o: BenchOptions, scenario: Scenario, t: TargetSpec, nginxPath: string | undefined, tls: Setup['tls']): Promise<RunResult> {
  const base: RunResult = { scenario, target: t.name, kind: t.kind, rate: 0, unit: scenario === 'tcp-storm' || scenario === 'saturation' ? 'conn/s' : 'req/s', p50: 0, p99: 0, p999: 0, attempts: 0, ok: 0, busy: 0, non2xx: 0, errors: emptyErrors(), peakRssMB: undefined };
  if (t.kind === 'acceptor' && t.strategy === 'reuseport' && !supportsReusePort()) return { ...base, skipped: `needs Node >= 22.12 (this is ${process.version})` };
  if (t.kind === 'nginx' && o.app) return { ...base, skipped: 'nginx serves a static answer, not the app' };
  if (t.kind === 'nginx' && !nginxPath) return { ...base, skipped: (findNginx(o.nginx) as { missing: string }).missing };
  if (t.kind === 'nginx' && scenario === 'saturation') return { ...base, skipped: 'nginx cannot run the CPU handler; its static answer is not comparable' };
  if (t.kind === 'haproxy' && 'missing' in findHaproxy()) return { ...base, skipped: (findHaproxy() as { missing: string }).missing };

  const setup = { ...setupFor(o, scenario, tls), ...(o.app ? { app: o.app } : {}) };
  const target = await startTarget(t, setup, nginxPath);
  try {
    const stop = await sampler(target.metricsPort, target.pid);
    const ms = o.duration * 1000;
    const r: RunResult = { ...base };
    let client: Tally | undefined;
    let tolerance = 0;
    let busyComparable = true;
    if (scenario === 'fairness') {
      const f = await fairness({ port: target.port, durationMs: ms, idle: 300, loops: 8, everyMs: 100, timeoutMs: 5000 });
      r.fairness = { goodAttempts: f.good.attempts, goodOk: f.good.ok, goodP99: f.good.p99, goodOutcomes: f.good.outcomes, hogAttempts: f.hog.attempts, hogOk: f.hog.ok, hogIdleHeld: f.hog.idleHeld };
      Object.assign(r, { rate: f.good.attempts ? f.good.ok / f.good.attempts : 0, p99: f.good.p99, attempts: f.good.attempts + f.hog.attempts, ok: f.good.ok + f.hog.ok });
      await new Promise((res) => setTimeout(res, 300));
      const samples = await stop();
      if (samples.before && samples.after) {
        const d = serverDelta(samples.before, samples.after);
        r.server = { acceptRate: (d.accepted / ms) * 1000, accepted: d.accepted, rejected: d.byReason, overflows: undefined, peakQueue: samples.peakQueue, peakListenQueue: samples.peakListenQueue };
      }
      return r;
    }
    if (scenario === 'reload') {
      // SIGHUP to the acceptor's primary, cluster rr's primary, nginx's master: each one's reload.
      // The acceptor's go one at a time (a SIGHUP during a reload is covered by that one, not a
      // second), and the clients run until the last has ended, which on a loaded machine can be
      // well after the duration: a reload the load did not see through would count for nothing.
      const port = target.metricsPort;
      const since = port === undefined ? undefined : await reloadedSoFar(port).catch(() => undefined);
      const at: number[] = [];
      let ending: Promise<void> | undefined; // the reload under way's end
      let whole = true; // every reload ended within its 15 s
      const k = await keepAlive(
        target.port,
        o.connections,
        ms,
        (elapsed) => {
          if (ending || elapsed < (at.length + 1) * RELOAD_EVERY_MS || elapsed >= ms - 500) return;
          at.push(elapsed);
          process.kill(target.pid, 'SIGHUP');
          if (port === undefined || since === undefined) return;
          ending = reloadsDone(port, since, at.length * setup.workers, 15_000).then((ok) => void ((ending = undefined), (whole &&= ok)));
        },
        () => ending,
      );
      const lat = k.samples.map((s) => s[1]);
      // Requests begun in the second after a reload.
      const after = k.samples.filter(([t]) => at.some((t0) => t >= t0 && t < t0 + 1000)).map((s) => s[1]);
      Object.assign(r, { rate: (k.ok / k.elapsedMs) * 1000, p50: percentile(lat, 50), p99: percentile([...lat], 99), p999: percentile([...lat], 99.9), attempts: k.ok + k.failed, ok: k.ok });
      r.reload = { reloads: at.length, failed: k.failed, reconnects: k.connects - o.connections, toldClose: k.toldClose, p99After: percentile(after, 99), migrated: undefined };
      await new Promise((res) => setTimeout(res, 300));
      const samples = await stop();
      // A reload that had not ended: what it moved would be counted in part, so nothing is.
      if (samples.before && samples.after && whole) r.reload.migrated = samples.after.migrated - samples.before.migrated;
      return r;
    }
    if (scenario === 'keepalive' || scenario === 'https-keepalive') {
      const c = await cannon(`${scenario === 'keepalive' ? 'http' : 'https'}://127.0.0.1:${target.port}/`, o.connections, o.duration, false);
      Object.assign(r, { rate: c.rps, p50: c.p50, p99: c.p99, p999: c.p999, ok: c.ok, busy: c.busy, non2xx: c.non2xx, errors: c.errors, attempts: c.requests + Object.values(c.errors).reduce((a, b) => a + b, 0) });
      // autocannon abandons the requests in flight at its deadline: up to one per connection.
      tolerance = o.connections;
      client = { ...newTally(), attempts: r.attempts, connected: o.connections, ok: c.ok, busy: c.busy, otherStatus: c.non2xx - c.busy, errors: c.errors };
    } else {
      // Storms: our own node:net client, which times each attempt from connect() to the answer
      // (autocannon's latency for connection: close runs are not that) and counts every outcome.
      const mode = scenario === 'tcp-storm' ? 'tcp' : scenario === 'https-storm' ? 'https' : 'http';
      const conc = scenario === 'saturation' ? o.saturationConnections : o.connections;
      const s = await storm({ host: '127.0.0.1', port: target.port, mode, concurrency: conc, durationMs: ms, timeoutMs: 10_000, injectLoss: o.injectLoss });
      const all = [...s.latency.ok, ...s.latency.busy];
      Object.assign(r, {
        rate: (s.attempts / s.elapsedMs) * 1000,
        p50: percentile(all, 50),
        p99: percentile([...all], 99),
        p999: percentile([...all], 99.9),
        okP99: percentile(s.latency.ok, 99),
        busyP99: percentile(s.latency.busy, 99),
        attempts: s.attempts,
        ok: s.ok,
        busy: s.busy,
        non2xx: s.busy + s.otherStatus,
        errors: s.errors,
      });
      client = s;
      busyComparable = mode !== 'tcp';
    }
    // Let the server finish what the client abandoned before reading its counters.
    await new Promise((res) => setTimeout(res, 300));
    const samples = await stop();
    r.peakRssMB = samples.peakRssBytes === undefined ? undefined : samples.peakRssBytes / 2 ** 20;
    const conns = samples.before && samples.after ? samples.after.accepted - samples.before.accepted : client?.connected;
    // Per new connection: not for keep-alive, where a hundred connections carry the whole run.
    if (samples.cpuSeconds !== undefined && conns && !scenario.endsWith('keepalive')) r.primaryUsPerConn = (samples.cpuSeconds * 1e6) / conns;
    // The efficiency headline: the whole server's CPU (primary and workers, user and system) per
    // answer (a request, a connection in the storms, a 200 or a 503 under saturation). Bounded by
    // nothing the shared cores do to the rate.
    const answers = r.ok + r.busy;
    if (samples.serverCpuSeconds !== undefined && answers > 0) r.serverUsPerAnswer = (samples.serverCpuSeconds * 1e6) / answers;
    if (samples.before && samples.after) {
      const d = serverDelta(samples.before, samples.after);
      r.server = {
        acceptRate: (d.accepted / ms) * 1000,
        accepted: d.accepted,
        rejected: d.byReason,
        overflows: samples.after.overflows === undefined || samples.before.overflows === undefined ? undefined : samples.after.overflows - samples.before.overflows,
        peakQueue: samples.peakQueue,
        peakListenQueue: samples.peakListenQueue,
      };
      r.accounting = reconcile(client, d, tolerance, busyComparable);
      if (tolerance > 0) r.accounting.note = `within ±${tolerance}: autocannon abandons in-flight requests at its deadline`;
    } else if (t.kind === 'acceptor' && t.metrics !== false) {
      r.accounting = { ok: false, exact: false, problems: ['could not read the server counters from /metrics'] };
    } else if (client && tolerance === 0) {
      r.accounting = reconcile(client, undefined);
    }
    return r;
  } finally {
    await target.stop();
  }
}

/**
 * Per scenario and target, the run with the median rate, with the median of the rounds' CPU per
 * answer; every round's accounting must balance.
 */
export function medians(all: (RunResult & { round: number })[]): RunResult[] {
  const out: RunResult[] = [];
  for (const r of all) {
    if (out.some((x) => x.scenario === r.scenario && x.target === r.target)) continue;
    const same = all.filter((x) => x.scenario === r.scenario && x.target === r.target).sort((a, b) => a.rate - b.rate);
    const { round: _round, ...median } = same[Math.floor((same.length - 1) / 2)]!;
    const problems = same.flatMap((x) => (x.accounting?.ok === false ? x.accounting.problems.map((p) => (same.length > 1 ? `round ${x.round + 1}: ${p}` : p)) : []));
    if (median.accounting && problems.length) median.accounting = { ...median.accounting, ok: false, problems };
    // CPU per answer: each round's, and their median (not the median-rate round's).
    const cpuByRound: (number | undefined)[] = [];
    for (const x of same) cpuByRound[x.round] = x.serverUsPerAnswer;
    const cpu = medianOf(same.flatMap((x) => (x.serverUsPerAnswer === undefined ? [] : [x.serverUsPerAnswer])));
    out.push({ ...median, ...(cpu === undefined ? {} : { serverUsPerAnswer: cpu, cpuByRound }), ...(same.length > 1 ? { rounds: same.map((x) => Math.round(x.rate)) } : {}) });
  }
  return out;
}

/**
 * The order of the runs. Rounds interleave the targets, so slow drift on a shared machine hits
 * them all alike; each round starts at the next target, and each scenario at a different one, so
 * no target is always the first (coldest) run, even with one round (--quick).
 */
export function planRuns(o: BenchOptions): { scenario: Scenario; target: TargetSpec & { id: string }; round: number }[] {
  const rotate = <T>(a: T[], k: number): T[] => a.map((_, i) => a[(i + k) % a.length]!);
  // Scenarios run different sets of targets: each starts at the first of its own, from its index
  // on, that no scenario before it started at (while there is one).
  const firsts = new Set<string>();
  return o.scenarios.flatMap((s, si) => {
    const targets = targetsFor(o, s);
    let k = si;
    for (let i = 0; i < targets.length; i++) {
      if (!firsts.has(targets[(si + i) % targets.length]!.id)) {
        k = si + i;
        break;
      }
    }
    if (targets.length) firsts.add(targets[k % targets.length]!.id);
    return Array.from({ length: o.rounds }, (_, round) => rotate(targets, round + k).map((target) => ({ scenario: s, target, round }))).flat();
  });
}

export async function bench(o: BenchOptions): Promise<{ report: Report; files: { json: string; md: string; svg: string }; mismatches: string[]; inexact: string[] }> {
  const nginx = findNginx(o.nginx);
  const nginxPath = 'path' in nginx ? nginx.path : undefined;
  const plan = planRuns(o);
  const cert = o.scenarios.some((s) => HTTPS.includes(s)) ? benchCert() : undefined;
  const all: (RunResult & { round: number })[] = [];
  let done = 0;
  for (const { scenario, target, round } of plan) {
    progress(done, plan.length, `${scenario} · ${target.name}${o.rounds > 1 ? ` · round ${round + 1}` : ''}`);
    const skippedBefore = all.find((r) => r.scenario === scenario && r.target === target.name && r.skipped);
    all.push({ ...(skippedBefore ?? (await runOne(o, scenario, target, nginxPath, cert))), round });
    done++;
  }
  if (cert) rmSync(cert.dir, { recursive: true, force: true });
  const runs = medians(all);
  progress(done, plan.length, 'done');
  if (process.stderr.isTTY) process.stderr.write('\n');
  const notes = [
    'The load generator shares the machine with the server: compare ratios within one run, not absolute numbers across machines.',
    ...('missing' in nginx ? [`nginx baseline skipped: ${nginx.missing}`] : []),
  ];
  const report: Report = { date: new Date().toISOString(), node: process.version, cpus: availableParallelism(), options: { ...o, out: undefined }, runs, ratios: ratios(runs), notes };
  const files = writeReport(report, o.out);
  // Only the default strategy promises exact admission: a difference there fails the run. The
  // others are printed as loudly, as what they cost, without failing it.
  const exact = new Set(targetsFor(o, 'storm').filter((t) => t.strategy === 'handoff').map((t) => t.name));
  const problems = (r: RunResult): string[] => (r.accounting && !r.accounting.ok ? r.accounting.problems.map((p) => `${r.scenario} · ${r.target}: ${p}`) : []);
  const mismatches = runs.filter((r) => exact.has(r.target)).flatMap(problems);
  const inexact = runs.filter((r) => !exact.has(r.target)).flatMap(problems);
  return { report, files, mismatches, inexact };
}

async function main(): Promise<void> {
  let o: BenchOptions | 'help';
  try {
    o = parseBenchArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  if (o === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const { report, files, mismatches, inexact } = await bench(o);
  process.stdout.write(table(report));
  process.stdout.write(`\nwrote ${files.json}\n      ${files.md}\n      ${files.svg}\n`);
  if (inexact.length) {
    process.stdout.write(`\n!!! NOT ACCOUNTED FOR, in strategies without exact admission: ${inexact.length} !!!\n${inexact.map((m) => `!!! ${m}`).join('\n')}\n`);
  }
  if (mismatches.length) {
    process.stdout.write(`\n!!! ACCOUNTING MISMATCH: ${mismatches.length} !!!\n${mismatches.map((m) => `!!! ${m}`).join('\n')}\n`);
    process.exitCode = 1;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
