// The descriptor limit: the soft one is the hard one in the primary and its workers (Node raises it
// as it starts), logged, and a warning where --max-connections or --backlog cannot fit in it.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { start, workerPids } from '../helpers/cli.js';
import { get } from '../helpers/http.js';

const skip = spawnSync('prlimit', ['--version']).status === 0 || process.env.CI ? false : 'prlimit not installed (util-linux); CI installs it';
const softOf = (pid: number): number => Number(/^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))![1]);

t.test('a soft limit below the hard one is the hard one in the primary and its workers, logged', { skip }, async (t) => {
  const acc = await start(['--workers', '1'], { wrap: ['prlimit', '--nofile=256:4096'] });
  t.teardown(() => acc.stop('SIGKILL'));
  t.match(acc.lines.find((l) => String(l.msg).startsWith('descriptor limit')), { msg: 'descriptor limit', soft: 4096, hard: 4096 });
  t.same([softOf(acc.proc.pid!), softOf(workerPids(acc)[0]!)], [4096, 4096]);
  t.same(acc.lines.filter((l) => l.level === 40 && /descriptor limit/.test(String(l.msg))), [], 'no warning: it fits');
  t.equal((await get(acc.port, '/')).status, 200);
});

t.test('a hard limit too low for --max-connections and --backlog: a warning for each, naming what it needs', { skip }, async (t) => {
  const acc = await start(['--workers', '2', '--max-connections', '1000', '--backlog', '511'], { wrap: ['prlimit', '--nofile=256:256'] });
  t.teardown(() => acc.stop('SIGKILL'));
  t.match(acc.lines.find((l) => String(l.msg).startsWith('descriptor limit')), { soft: 256, hard: 256 });
  const warnings = acc.lines.filter((l) => l.level === 40 && /descriptor limit is below/.test(String(l.msg)));
  t.match(warnings, [
    { limit: 256, maxConnections: 1000, needs: 1064, msg: 'the descriptor limit is below what --max-connections needs in a worker: raise the hard limit (ulimit -Hn, LimitNOFILE=) or lower --max-connections' },
    { limit: 256, backlog: 511, needs: 579, msg: 'the descriptor limit is below what --backlog needs in the primary: raise the hard limit (ulimit -Hn, LimitNOFILE=) or lower --backlog' },
  ]);
  t.equal(warnings.length, 2);
});
