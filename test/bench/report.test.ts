// The report's picture and the run order: every label inside the picture, skipped targets shown
// with their reason, and no target always run first.
import t from 'tap';
import { svg, textWidth, type Report, type RunResult } from '../../bench/report.js';
import { parseBenchArgs, planRuns } from '../../bench/run.js';

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
