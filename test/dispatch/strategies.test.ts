// Every strategy serves; where workers accept, each refuses past --max-connections itself.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { start, run, fixture } from '../helpers/cli.js';
import { get, rawRequest } from '../helpers/http.js';
import { supportsReusePort } from '../../src/options.js';

const strategies = ['handoff', 'round-robin', 'shared', ...(supportsReusePort() ? ['reuseport'] : [])];

for (const strategy of strategies) {
  t.test(`${strategy} serves requests from its workers`, async (t) => {
    const acc = await start(['--strategy', strategy, '--host', '127.0.0.1']);
    t.teardown(() => acc.stop('SIGKILL'));
    const statuses = await Promise.all(Array.from({ length: 30 }, () => get(acc.port).then((r) => r.status)));
    t.same(statuses, Array(30).fill(200));
    t.equal((await get(acc.port, '/healthz')).body, '{"status":"ok"}\n');
    const { code } = await acc.stop('SIGTERM');
    t.equal(code, 0, 'clean stop');
  });
}

for (const strategy of strategies.filter((s) => s !== 'handoff')) {
  t.test(`${strategy}: a worker at --max-connections tells the next one busy`, async (t) => {
    const holdFile = join(t.testdir(), 'release');
    const acc = await start(['--strategy', strategy, '--host', '127.0.0.1', '--workers', '1', '--max-connections', '1', '--handler', fixture('hold.mjs')], { env: { HOLD_FILE: holdFile } });
    t.teardown(() => acc.stop('SIGKILL'));
    const first = rawRequest(acc.port);
    await first.connected;
    // The worker sees connections in order, so wait until it has the first one.
    await new Promise((r) => setTimeout(r, 300));
    const second = await rawRequest(acc.port).response;
    t.equal(second.status, 503, 'busy');
    writeFileSync(holdFile, '');
    t.equal((await first.response).status, 200);
  });
}

t.test('reuseport where Node cannot do it is a clear option error', { skip: supportsReusePort() ? `Node ${process.version} supports reusePort` : false }, async (t) => {
  const r = run(['--strategy', 'reuseport'], { wait: 'none' });
  t.equal((await r.exited).code, 2);
  t.match(r.stderr(), /^acceptor: invalid --strategy "reuseport": needs Node >= 22\.12/);
});
