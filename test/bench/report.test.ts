// The report's picture, its CPU figures and the run order: every label inside the picture, skipped
// targets shown with their reason, CPU per answer paired by round, and no target always run first.
import t from 'tap';
import { cpuRatio, markdown, median, ratios, svg, textWidth, type Report, type RunResult } from '../../bench/report.js';
import { medians, parseBenchArgs, planRuns } from '../../bench/run.js';

const run = (over: Partial<RunResult>): RunResult => ({ scenario: 'storm', target: 'x', kind: 'acceptor', rate: 0, unit: 'req/s', p50: 0, p99: 0, p999: 0, attempts: 0, ok: 0, busy: 0, non2xx: 0, errors: { refused: 0, reset: 0, timeout: 0, other: 0 }, peakRssMB: undefined, ...over });

t.test('svg: skipped targets with their reason; every label inside the width', async (t) => {
  const report: Report = {
    date: '2026-11-25T00:00:00.000Z', node: 'v20.20.2', cpus: 2, options: {}, ratios: [], notes: [],
    runs: [
      run({ target: 'handoff', rate: 123_456 }),
      run({ target: 'reuseport', skipped: 'needs Node >= 22.12 (this is v20.20.2)' }),
      run({ target: 'nginx', kind: 'nginx', skipped: 'nginx is not installed (apt-get install nginx-light)' }),
      run({ scenario: 'saturation', target: 'handoff (metrics off)', unit: 'conn/s', ok: 123_456, busy: 9_876_543, errors: { refused: 0, reset: 0, timeout: 12_345, other: 0 } }),
      run({ scenario: 'saturation', target: 'shared', unit: 'conn/s', ok: 5, busy: 10 }),
    ],
  };
  const out = svg(report);
  t.match(out, /skipped: needs Node &gt;= 22\.12 \(this is v20\.20\.2\)/);
  t.match(out, /skipped: nginx is not installed/);
  const width = Number(/<svg [^>]*width="(\d+)"/.exec(out)![1]);
  for (const m of out.matchAll(/<text x="([\d.]+)"[^>]*font-size="(\d+)"([^>]*)>([^<]*)<\/text>/g)) {
    const [, x, size, attrs, text] = m as unknown as [string, string, string, string, string];
    const end = attrs!.includes('text-anchor="end"') ? Number(x) : Number(x) + textWidth(text!.replace(/&[a-z]+;/g, '_'), Number(size));
    t.ok(end <= width, `"${text}" ends at ${end.toFixed(0)} of ${width}`);
  }
});

t.test('each scenario starts at a different target, even with one round', async (t) => {
  const o = parseBenchArgs(['--quick']);
  if (o === 'help') throw new Error('unexpected');
  const plan = planRuns(o);
  const firsts = o.scenarios.map((s) => plan.find((p) => p.scenario === s)!.target.id);
  t.equal(new Set(firsts).size, firsts.length, `first targets: ${firsts.join(', ')}`);
  const three = parseBenchArgs(['--rounds', '3', '--scenarios', 'storm']);
  if (three === 'help') throw new Error('unexpected');
  const rounds = [0, 1, 2].map((r) => planRuns(three).find((p) => p.round === r)!.target.id);
  t.equal(new Set(rounds).size, 3, `each round starts elsewhere: ${rounds.join(', ')}`);
});

t.test('server CPU per answer: the median of the rounds, and ratios paired by round', async (t) => {
  // Round 2 ran on a busier machine for both: paired, it cancels out; the medians alone would not.
  const rounds = (target: string, kind: RunResult['kind'], cpu: number[], rate: number[]) => cpu.map((c, round) => ({ ...run({ target, kind, rate: rate[round]!, serverUsPerAnswer: c }), round }));
  const all = [...rounds('handoff', 'acceptor', [100, 200, 110], [10, 5, 9]), ...rounds('shared', 'acceptor', [100, 210, 100], [10, 5, 10])];
  const runs = medians(all);
  const h = runs.find((r) => r.target === 'handoff')!;
  t.equal(h.serverUsPerAnswer, 110, "the rounds' median CPU, not the median-rate round's (100)");
  t.same(h.cpuByRound, [100, 200, 110]);
  t.equal(h.rate, 9, 'the rate is still the median-rate round');
  const r = ratios(runs).find((x) => x.target === 'handoff' && x.baseline === 'shared')!;
  t.equal(r.cpuRatio, 1, 'median of 100/100, 200/210, 110/100');
  t.equal(cpuRatio(run({ serverUsPerAnswer: 110 }), run({ serverUsPerAnswer: 100 })), 1.1, 'without rounds: the ratio of the two figures');
  t.equal(median([3, 1, 2, 4]), 2, 'the lower middle one for an even count');
  t.equal(median([]), undefined);
  // The tables lead with it.
  const report: Report = { date: 'd', node: 'v20', cpus: 2, options: {}, runs, ratios: ratios(runs), notes: [] };
  const md = markdown(report);
  t.match(md, /\| target \| server CPU µs\/answer \| rate \|/);
  t.match(md, /\| handoff \| 110\.0 \| 9 req\/s \|/);
  t.ok(md.indexOf('Server CPU per answer (same run') < md.indexOf('Rate ratios'), 'the CPU ratios come before the rate ratios');
  t.match(md, /\*\*handoff \/ shared: 1\.00×\*\*/);
});
