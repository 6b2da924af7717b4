// The descriptor limit: the soft one is the hard one in the primary and its workers (Node raises it
// as it starts), logged; --max-connections and --backlog capped at what it can hold, with a warning.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { start, workerPids, fixture, until } from '../helpers/cli.js';
import { get, rawRequest } from '../helpers/http.js';
import { scrape, value } from '../helpers/metrics.js';

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

t.test('a hard limit too low for --max-connections and --backlog caps both, saying so; held clients are served or wait, none is dropped', { skip }, async (t) => {
  const dir = t.testdir();
  // fdpass: under --transport ipc the primary itself still runs out here (92 of 450 dropped when
  // measured), a case not solved yet.
  const acc = await start(['--workers', '2', '--transport', 'fdpass', '--max-connections', '1000', '--backlog', '511', '--queue-timeout', '60s', '--handler', fixture('hold.mjs')], { wrap: ['prlimit', '--nofile=256:256'], env: { HOLD_FILE: join(dir, 'release') } });
  t.teardown(() => acc.stop('SIGKILL'));
  t.match(acc.lines.find((l) => String(l.msg).startsWith('descriptor limit')), { soft: 256, hard: 256 });
  const warnings = acc.lines.filter((l) => l.level === 40 && /capped at the descriptor limit/.test(String(l.msg)));
  t.match(warnings, [
    { limit: 256, maxConnections: 1000, capped: 192, msg: '--max-connections capped at the descriptor limit less 64 for the worker itself: Raise the hard limit (ulimit -Hn, systemd LimitNOFILE=) to allow more.' },
    { limit: 256, backlog: 511, capped: 188, msg: '--backlog capped at the descriptor limit less 64 and two per worker for the primary itself: Raise the hard limit (ulimit -Hn, systemd LimitNOFILE=) to allow more.' },
  ]);
  t.equal(warnings.length, 2);
  let m = await scrape(acc.metricsPort);
  t.same([value(m, 'acceptor_worker_max_connections'), value(m, 'acceptor_queue_capacity')], [192, 188], 'what admission uses');
  // 450 clients: 2 × 192 held by the workers, 66 waiting. Uncapped, a worker would have run out of
  // descriptors and the kernel would have dropped hand-offs: clients closed with no answer.
  const clients = Array.from({ length: 450 }, () => rawRequest(acc.port));
  await Promise.all(clients.map((c) => c.connected));
  await until(async () => {
    m = await scrape(acc.metricsPort);
    return value(m, 'acceptor_queue_depth') === 66 && value(m, 'acceptor_worker_connections{worker="1"}') === 192 && value(m, 'acceptor_worker_connections{worker="2"}') === 192;
  }, 20_000);
  writeFileSync(join(dir, 'release'), '');
  const answers = await Promise.all(clients.map((c) => c.response));
  t.same([...new Set(answers.map((a) => a.status))], [200], 'every one served');
  m = await scrape(acc.metricsPort);
  t.same(['handoff_failed', 'accept_failed', 'worker_exit'].map((r) => value(m, `acceptor_connection_errors_total{reason="${r}"}`)), [0, 0, 0], 'nothing dropped');
});
