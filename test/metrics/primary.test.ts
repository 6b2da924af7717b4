// The primary's configuration series read what the acceptor was started with, strategy by strategy.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { start } from '../helpers/cli.js';
import { scrape, value } from '../helpers/metrics.js';
import { somaxconn } from '../../src/endpoint/bind.js';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const MAX = somaxconn() ?? 4096;
const info = (text: string): string | undefined => /^acceptor_info(\{.*\}) 1$/m.exec(text)?.[1];

const cases = [
  { args: ['--transport', 'ipc', '--backlog', '7', '--max-connections', '3', '--listen-backlog', '100'], strategy: 'handoff', transport: 'ipc', protocol: 'http', queue: 7, max: 3, listen: 100 },
  { args: ['--transport', 'fdpass', '--protocol', 'tcp', '--backlog', '9'], strategy: 'handoff', transport: 'fdpass', protocol: 'tcp', queue: 9, max: 1024, listen: MAX },
  { args: ['--strategy', 'round-robin', '--backlog', '11', '--max-connections', '5'], strategy: 'round-robin', transport: 'none', protocol: 'http', queue: undefined, max: 5, listen: 11 },
];

for (const c of cases) {
  t.test(`${c.args.join(' ')}: acceptor_info, limits and backlogs read as configured`, async (t) => {
    const acc = await start(['--workers', '2', '--host', '127.0.0.1', ...c.args]);
    t.teardown(() => acc.stop('SIGKILL'));
    const m = await scrape(acc.metricsPort);
    t.equal(info(m), `{strategy="${c.strategy}",transport="${c.transport}",protocol="${c.protocol}",version="${VERSION}"}`);
    t.equal(value(m, 'acceptor_worker_max_connections'), c.max, '--max-connections');
    for (const w of ['1', '2']) t.equal(value(m, `acceptor_worker_capacity{worker="${w}"}`), c.max, `worker ${w} takes --max-connections (no app limit; its descriptors hold more)`);
    t.equal(value(m, 'acceptor_queue_capacity'), c.queue, "--backlog (the acceptor's queue; absent where the workers accept)");
    t.equal(value(m, 'acceptor_queue_depth'), c.queue === undefined ? undefined : 0);
    t.equal(value(m, 'acceptor_listen_backlog'), Math.min(c.listen, MAX), "the kernel's backlog");
    t.equal(value(m, 'acceptor_workers{state="ready"}'), 2, 'both workers ready');
    for (const s of ['starting', 'stalled', 'draining']) t.equal(value(m, `acceptor_workers{state="${s}"}`), 0, `none ${s}`);
  });
}
