// The results: a terminal table, JSON, a Markdown summary and an SVG chart.
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Accounting } from './accounting.js';
import type { ErrorKind } from './load/storm.js';

export type Scenario = 'keepalive' | 'storm' | 'tcp-storm' | 'saturation' | 'https-keepalive' | 'https-storm' | 'reload' | 'fairness';
export const SCENARIO_TITLE: Record<Scenario, string> = {
  keepalive: 'Keep-alive throughput (autocannon)',
  storm: 'Connection storm, HTTP, one request per connection (node:net; latency = connect to answer)',
  'tcp-storm': 'Connection storm, raw TCP connect/close (node:net)',
  saturation: 'Backlog saturation (CPU handler, small backlog, many more clients than slots)',
  'https-keepalive': 'HTTPS keep-alive throughput, HTTP/1.1 over TLS (autocannon)',
  'https-storm': 'HTTPS connection storm: a full TLS handshake and one request per connection (node:tls)',
  reload: 'Reload under keep-alive load: SIGHUP every 2 s (acceptor: rolling reload; cluster rr: workers replaced one by one; nginx -s reload)',
  fairness: 'Fairness: a hog (127.0.0.2: idle connections held, reconnect loops) and a good client (127.0.0.3: 10 requests a second), 2 workers × 50 slots, backlog 100',
};

export interface RunResult {
  scenario: Scenario;
  target: string;
  kind: string;
  skipped?: string;
  rate: number;
  unit: 'req/s' | 'conn/s';
  p50: number;
  p99: number;
  p999: number;
  attempts: number;
  ok: number;
  busy: number;
  non2xx: number;
  errors: Record<ErrorKind, number>;
  okP99?: number;
  busyP99?: number;
  server?: { acceptRate: number; accepted: number; rejected: Record<string, number>; overflows: number | undefined; peakQueue: number | undefined; peakListenQueue: number | undefined };
  peakRssMB: number | undefined;
  /** CPU time of the primary (acceptor, cluster rr) or master (nginx) per connection accepted, µs. */
  primaryUsPerConn?: number;
  /**
   * The efficiency headline: CPU time of the whole server (primary and workers, user + system, from
   * /proc) per answer, µs; with rounds, the median of the rounds' figures.
   */
  serverUsPerAnswer?: number;
  /** Each round's server µs/answer, by round number (the ratios pair rounds run side by side). */
  cpuByRound?: (number | undefined)[];
  accounting?: Accounting;
  /** Rate of each round, when there were several (the row shows the median). */
  rounds?: number[];
  /** The reload scenario: what the keep-alive clients saw across the reloads. */
  reload?: { reloads: number; failed: number; reconnects: number; toldClose: number; p99After: number; migrated: number | undefined };
  /** The fairness scenario: what each client got. */
  fairness?: { goodAttempts: number; goodOk: number; goodP99: number; goodOutcomes: Record<string, number>; hogAttempts: number; hogOk: number; hogIdleHeld: number };
}

export interface Ratio {
  scenario: Scenario;
  target: string;
  baseline: string;
  ratio: number;
  /**
   * Server CPU per answer against the baseline's (lower is better): the median of the per-round
   * ratios, each round's target against the same round's baseline (interleaved, so run minutes
   * apart at most), where both have rounds; else the ratio of the two figures.
   */
  cpuRatio?: number;
}

export interface Report {
  date: string;
  node: string;
  cpus: number;
  options: Record<string, unknown>;
  runs: RunResult[];
  ratios: Ratio[];
  notes: string[];
}

const f0 = (n: number | undefined): string => (n === undefined ? '–' : Math.round(n).toLocaleString('en-US'));
const f2 = (n: number | undefined): string => (n === undefined ? '–' : n.toFixed(2));
const errs = (e: Record<string, number>): string => {
  const parts = Object.entries(e).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`);
  return parts.length ? parts.join(', ') : '0';
};
const rej = (r: Record<string, number> | undefined): string => {
  if (!r) return '–';
  const parts = Object.entries(r).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`);
  return parts.length ? parts.join(', ') : '0';
};

export function ratios(runs: RunResult[]): Ratio[] {
  const out: Ratio[] = [];
  const baselines = ['cluster rr', 'node:http', 'nginx', 'shared', 'handoff (metrics off)', 'handoff (ipc)'];
  // The default against every baseline; the other strategies against the external ones only.
  const forDefaultOnly = new Set(['shared', 'handoff (metrics off)', 'handoff (ipc)']);
  for (const r of runs) {
    if (r.kind !== 'acceptor' || r.skipped || r.target === 'handoff (metrics off)' || r.target === 'handoff (ipc)') continue;
    for (const b of baselines) {
      if (b === r.target || (forDefaultOnly.has(b) && r.target !== 'handoff')) continue;
      const base = runs.find((x) => x.scenario === r.scenario && x.target === b && !x.skipped && x.rate > 0);
      if (base) {
        const cpu = cpuRatio(r, base);
        out.push({ scenario: r.scenario, target: r.target, baseline: b, ratio: r.rate / base.rate, ...(cpu === undefined ? {} : { cpuRatio: cpu }) });
      }
    }
  }
  return out;
}

/** The median of a list of numbers (the lower middle one for an even count), or undefined if empty. */
export function median(xs: number[]): number | undefined {
  const v = [...xs].sort((a, b) => a - b);
  return v.length ? v[Math.floor((v.length - 1) / 2)] : undefined;
}

/**
 * `r`'s server CPU per answer against `base`'s. Paired by round: on a shared machine CPU per answer
 * drifts with everything else running (±15% between rounds of one target was seen here), and
 * rounds of two targets run side by side drift together.
 */
export function cpuRatio(r: RunResult, base: RunResult): number | undefined {
  const a = r.cpuByRound, b = base.cpuByRound;
  const paired: number[] = [];
  if (a && b) for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] && b[i]) paired.push(a[i]! / b[i]!);
  if (paired.length) return median(paired);
  return r.serverUsPerAnswer && base.serverUsPerAnswer ? r.serverUsPerAnswer / base.serverUsPerAnswer : undefined;
}

const HEAD = ['target', 'server CPU µs/answer', 'rate', 'p50 ms', 'p99 ms', 'p99.9 ms', '200', '503', 'client errors', 'accept/s (server)', 'rejected (server)', 'peak queue', 'peak listen q', 'overflows', 'RSS MB', 'primary µs/conn', 'accounting'];

function row(r: RunResult): string[] {
  if (r.skipped) return [r.target, `skipped: ${r.skipped}`, ...Array(HEAD.length - 2).fill('')];
  const acct = r.accounting ? (r.accounting.ok ? (r.accounting.exact ? 'exact' : 'ok ±') : 'MISMATCH') : '–';
  const lat = r.scenario === 'saturation' ? [`${f2(r.p50)}`, `${f2(r.okP99)} / ${f2(r.busyP99)}`, f2(r.p999)] : [f2(r.p50), f2(r.p99), f2(r.p999)];
  return [r.target, r.serverUsPerAnswer === undefined ? '–' : r.serverUsPerAnswer.toFixed(1), `${f0(r.rate)} ${r.unit}`, ...lat, f0(r.ok), f0(r.busy), errs(r.errors), f0(r.server?.acceptRate), rej(r.server?.rejected), f0(r.server?.peakQueue), f0(r.server?.peakListenQueue), f0(r.server?.overflows), f0(r.peakRssMB), r.primaryUsPerConn === undefined ? '–' : r.primaryUsPerConn.toFixed(1), acct];
}

const RELOAD_HEAD = ['target', 'rate', 'reloads', 'failed requests', 'reconnects', 'told to close', 'p99 ms', 'p99 ms, 1 s after each reload', 'migrated (server)'];

function reloadRow(r: RunResult): string[] {
  if (r.skipped || !r.reload) return [r.target, `skipped: ${r.skipped ?? 'no result'}`, ...Array(RELOAD_HEAD.length - 2).fill('')];
  const x = r.reload;
  return [r.target, `${f0(r.rate)} ${r.unit}`, f0(x.reloads), f0(x.failed), f0(x.reconnects), f0(x.toldClose), f2(r.p99), f2(x.p99After), f0(x.migrated)];
}

const FAIR_HEAD = ['target', 'good client served', 'good p99 ms', 'good outcomes', 'hog tries', 'hog served', 'hog idle held', 'rejected (server)'];

function fairRow(r: RunResult): string[] {
  if (r.skipped || !r.fairness) return [r.target, `skipped: ${r.skipped ?? 'no result'}`, ...Array(FAIR_HEAD.length - 2).fill('')];
  const x = r.fairness;
  const share = x.goodAttempts ? `${((100 * x.goodOk) / x.goodAttempts).toFixed(1)}% (${x.goodOk}/${x.goodAttempts})` : '–';
  return [r.target, share, f2(x.goodP99), rej(x.goodOutcomes), f0(x.hogAttempts), f0(x.hogOk), f0(x.hogIdleHeld), rej(r.server?.rejected)];
}

const headFor = (s: Scenario): string[] => (s === 'reload' ? RELOAD_HEAD : s === 'fairness' ? FAIR_HEAD : HEAD);
const rowFor = (r: RunResult): string[] => (r.scenario === 'reload' ? reloadRow(r) : r.scenario === 'fairness' ? fairRow(r) : row(r));

export function table(report: Report): string {
  const out: string[] = [];
  for (const scenario of Object.keys(SCENARIO_TITLE) as Scenario[]) {
    const runs = report.runs.filter((r) => r.scenario === scenario);
    if (!runs.length) continue;
    out.push('', SCENARIO_TITLE[scenario] + (scenario === 'saturation' ? '   (p99 column: served / busy)' : ''));
    const HEAD = headFor(scenario);
    const rows = [HEAD, ...runs.map(rowFor)];
    const w = HEAD.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
    for (const r of rows) out.push(r.map((c, i) => (c ?? '').padEnd(w[i]!)).join('  ').trimEnd());
    const rs = report.ratios.filter((x) => x.scenario === scenario);
    const cpu = rs.filter((x) => x.cpuRatio !== undefined);
    if (cpu.length) out.push('server CPU per answer, ratios (lower is better): ' + cpu.map((x) => `${x.target}/${x.baseline} ${x.cpuRatio!.toFixed(2)}×`).join('; '));
    if (rs.length) out.push('rate ratios: ' + rs.map((x) => `${x.target}/${x.baseline} ${x.ratio.toFixed(2)}×`).join('; '));
  }
  for (const n of report.notes) out.push(`note: ${n}`);
  return out.join('\n') + '\n';
}

export function markdown(report: Report): string {
  const out = [`# Benchmark ${report.date}`, '', `Node ${report.node}, ${report.cpus} CPUs (load generator on the same machine). Options: \`${JSON.stringify(report.options)}\``, ''];
  for (const scenario of Object.keys(SCENARIO_TITLE) as Scenario[]) {
    const runs = report.runs.filter((r) => r.scenario === scenario);
    if (!runs.length) continue;
    const HEAD = headFor(scenario);
    out.push(`## ${SCENARIO_TITLE[scenario]}`, '', `| ${HEAD.join(' | ')} |`, `|${HEAD.map(() => '---').join('|')}|`);
    for (const r of runs) out.push(`| ${rowFor(r).join(' | ')} |`);
    const rs = report.ratios.filter((x) => x.scenario === scenario);
    const cpu = rs.filter((x) => x.cpuRatio !== undefined);
    if (cpu.length) out.push('', 'Server CPU per answer (same run, median of per-round ratios, lower is better): ' + cpu.map((x) => `**${x.target} / ${x.baseline}: ${x.cpuRatio!.toFixed(2)}×**`).join(', '));
    if (rs.length) out.push('', 'Rate ratios (same run): ' + rs.map((x) => `${x.target} / ${x.baseline}: ${x.ratio.toFixed(2)}×`).join(', '));
    for (const r of runs) for (const p of r.accounting?.problems ?? []) out.push('', `> ACCOUNTING MISMATCH ${r.target}: ${p}`);
    out.push('');
  }
  for (const n of report.notes) out.push(`- ${n}`);
  return out.join('\n') + '\n';
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Per scenario, a bar per target: throughput, and for saturation served vs busy. */
/** Width of `text` in px at `size` (sans-serif, digits and lower case): enough to keep labels inside. */
export const textWidth = (text: string, size: number): number => text.length * size * 0.62;

export function svg(report: Report): string {
  const W = 900, LABEL = 190, BAR = 18, GAP = 6;
  const parts: string[] = [];
  let y = 30;
  parts.push(`<text x="10" y="20" font-size="16" font-weight="bold">cluster-acceptor benchmark ${esc(report.date)} (Node ${esc(report.node)})</text>`);
  for (const scenario of Object.keys(SCENARIO_TITLE) as Scenario[]) {
    const all = report.runs.filter((r) => r.scenario === scenario);
    const runs = all.filter((r) => !r.skipped);
    if (!all.length) continue;
    y += 24;
    parts.push(`<text x="10" y="${y}" font-size="13" font-weight="bold">${esc(SCENARIO_TITLE[scenario])}</text>`);
    y += 8;
    const sat = scenario === 'saturation';
    const max = Math.max(...runs.map((r) => (sat ? r.ok + r.busy : r.rate)), 1);
    const cpu = (r: RunResult): string => (r.serverUsPerAnswer === undefined ? '' : `, ${r.serverUsPerAnswer.toFixed(1)} µs CPU/answer`);
    const label = (r: RunResult): string => (sat ? `${f0(r.ok)} served, ${f0(r.busy)} busy, ${f0(Object.values(r.errors).reduce((a, b) => a + b, 0))} errors` : `${f0(r.rate)} ${r.unit}`) + cpu(r);
    // Bars leave room for the widest label after them, so every label stays inside the picture.
    const scale = (W - LABEL - 16 - Math.max(0, ...runs.map((r) => textWidth(label(r), 11)))) / max;
    for (const r of all) {
      parts.push(`<text x="${LABEL - 8}" y="${y + 13}" font-size="12" text-anchor="end">${esc(r.target)}</text>`);
      if (r.skipped) {
        parts.push(`<text x="${LABEL}" y="${y + 13}" font-size="11" fill="#757575" font-style="italic">skipped: ${esc(r.skipped)}</text>`);
      } else if (sat) {
        const wOk = r.ok * scale, wBusy = r.busy * scale;
        parts.push(`<rect x="${LABEL}" y="${y}" width="${wOk.toFixed(1)}" height="${BAR}" fill="#2e7d32"><title>served ${r.ok}</title></rect>`);
        parts.push(`<rect x="${(LABEL + wOk).toFixed(1)}" y="${y}" width="${wBusy.toFixed(1)}" height="${BAR}" fill="#ef6c00"><title>busy ${r.busy}</title></rect>`);
        parts.push(`<text x="${(LABEL + wOk + wBusy + 6).toFixed(1)}" y="${y + 13}" font-size="11">${label(r)}</text>`);
      } else {
        const w = r.rate * scale;
        parts.push(`<rect x="${LABEL}" y="${y}" width="${w.toFixed(1)}" height="${BAR}" fill="${r.kind === 'acceptor' ? '#1565c0' : '#9e9e9e'}"><title>${f0(r.rate)} ${r.unit}</title></rect>`);
        parts.push(`<text x="${(LABEL + w + 6).toFixed(1)}" y="${y + 13}" font-size="11">${label(r)}</text>`);
      }
      y += BAR + GAP;
    }
  }
  y += 20;
  parts.push(`<text x="10" y="${y}" font-size="11" fill="#555">blue: acceptor strategies · grey: baselines · saturation: green served, orange told busy</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y + 10}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${parts.join('\n')}\n</svg>\n`;
}

export function writeReport(report: Report, dir: string): { json: string; md: string; svg: string } {
  mkdirSync(dir, { recursive: true });
  const stamp = report.date.replace(/[:.]/g, '-');
  const files = { json: join(dir, `${stamp}.json`), md: join(dir, `${stamp}.md`), svg: join(dir, `${stamp}.svg`) };
  writeFileSync(files.json, JSON.stringify(report, null, 2) + '\n');
  writeFileSync(files.md, markdown(report));
  writeFileSync(files.svg, svg(report));
  return files;
}
