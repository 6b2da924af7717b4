// What an app server's own accept enforces holds under the acceptor as under node, with the
// acceptor's promises kept: past its maxConnections a connection waits (handoff) or is told busy,
// never closed unanswered; a client its blockList denies is closed, as node closes it, and counted.
import t from 'tap';
import { BlockList, createServer, Server, type ServerOpts, type Socket } from 'node:net';
import { appLimit, atAppLimit, blocked } from '../../src/worker/app-accept.js';
import { fixture, start, until, within } from '../helpers/cli.js';
import { get, rawClient, rawRequest } from '../helpers/http.js';
import { scrape, untilValue, value } from '../helpers/metrics.js';

const APP = fixture('apps/max-connections.mjs');

t.test('appLimit: maxConnections rounded up as node counts it; none, 0, or not a number is no limit', async (t) => {
  const s = (m: unknown, open = 0): Server => Object.assign(createServer(), { maxConnections: m, _connections: open });
  t.same(
    [undefined, s(undefined), s(0), s(-1), s('5'), s(1), s(2), s(2.5)].map((x) => appLimit(x)),
    [Infinity, Infinity, Infinity, Infinity, Infinity, 1, 2, 3],
  );
  t.same([atAppLimit(s(2, 1)), atAppLimit(s(2, 2)), atAppLimit(s(2.5, 2)), atAppLimit(s(2.5, 3)), atAppLimit(s(undefined, 1e6))], [false, true, false, true, false]);
});

const reasons = (text: string): number[] => ['queue_full', 'worker_full'].map((r) => value(text, `acceptor_connections_rejected_total{reason="${r}"}`) ?? NaN);
const handled = (text: string): number => value(text, 'acceptor_connections_handled_total{worker="1"}') ?? NaN;

t.test('handoff: the app takes 2 (its maxConnections), the 3rd waits in the queue, the 4th is told busy (queue_full); a close lets the 3rd in', async (t) => {
  const acc = await start(['--workers', '1', '--max-connections', '10', '--backlog', '1', APP], { env: { APP_MAX_CONNECTIONS: '2' } });
  t.teardown(() => acc.stop('SIGKILL'));
  await untilValue(acc.metricsPort, 'acceptor_worker_capacity{worker="1"}', 2);
  const a = rawRequest(acc.port, '/hold');
  const b = rawRequest(acc.port, '/hold');
  await untilValue(acc.metricsPort, 'acceptor_worker_connections{worker="1"}', 2);
  const c = rawRequest(acc.port, '/');
  await untilValue(acc.metricsPort, 'acceptor_queue_depth', 1);
  const d = await within(rawRequest(acc.port, '/').response, 'the 4th answered', acc);
  t.equal(d.status, 503, 'the 4th: busy');
  let m = await scrape(acc.metricsPort);
  t.same([handled(m), ...reasons(m)], [2, 1, 0], 'handled 2; queue_full 1, worker_full 0: the 3rd still waits');
  a.socket.destroy();
  const r = await within(c.response, 'the 3rd answered', acc);
  t.same([r.status, r.body], [200, 'node\n'], 'the 3rd served once a slot was free');
  m = await scrape(acc.metricsPort);
  t.same([handled(m), ...reasons(m)], [3, 1, 0]);
  b.socket.destroy();
});

t.test('handoff: a limit the app lowers while it runs is told the primary; the next connection waits for it', async (t) => {
  const acc = await start(['--workers', '1', '--max-connections', '10', '--backlog', '5', APP], { env: { APP_MAX_CONNECTIONS: '0' } });
  t.teardown(() => acc.stop('SIGKILL'));
  t.equal(value(await scrape(acc.metricsPort), 'acceptor_worker_capacity{worker="1"}'), 10, 'no limit of its own: --max-connections');
  t.same((await get(acc.port, '/limit?n=1')).body, 'limit 1\n');
  await untilValue(acc.metricsPort, 'acceptor_worker_capacity{worker="1"}', 1);
  const a = rawRequest(acc.port, '/hold');
  await untilValue(acc.metricsPort, 'acceptor_worker_connections{worker="1"}', 1);
  const b = rawRequest(acc.port, '/');
  await untilValue(acc.metricsPort, 'acceptor_queue_depth', 1);
  a.socket.destroy();
  const r = await within(b.response, 'the waiting one answered', acc);
  t.same([r.status, r.body], [200, 'node\n']);
  t.same(reasons(await scrape(acc.metricsPort)), [0, 0], 'nobody refused');
});

t.test('shared: a limit the app lifts again (maxConnections 0) is told the primary as none: --max-connections holds again', async (t) => {
  // No limit goes over IPC as the largest number: JSON has no Infinity, and a null capacity reads
  // as 0. (Under handoff the descriptor budget bounds it anyway: there the lesser is finite.)
  const acc = await start(['--workers', '1', '--strategy', 'shared', '--max-connections', '10', APP], { env: { APP_MAX_CONNECTIONS: '1' } });
  t.teardown(() => acc.stop('SIGKILL'));
  await untilValue(acc.metricsPort, 'acceptor_worker_capacity{worker="1"}', 1);
  t.same((await get(acc.port, '/limit?n=0')).body, 'limit 0\n');
  await untilValue(acc.metricsPort, 'acceptor_worker_capacity{worker="1"}', 10);
  const held = [rawRequest(acc.port, '/hold'), rawRequest(acc.port, '/hold')];
  await untilValue(acc.metricsPort, 'acceptor_worker_connections{worker="1"}', 2);
  const r = await within(rawRequest(acc.port, '/').response, 'a third beside the two held', acc);
  t.same([r.status, r.body], [200, 'node\n'], 'three at once, past the old limit of 1');
  t.same(reasons(await scrape(acc.metricsPort)), [0, 0], 'nobody refused');
  for (const h of held) h.socket.destroy();
});

t.test('handoff: a connection handed over before the primary heard of a lower limit is told busy (worker_full), and the app hears the drop', async (t) => {
  // The app lowers its limit to 1 and then keeps its event loop busy: the worker can tell the
  // primary nothing, so the primary hands the next connection over by the limit it knew (5).
  const acc = await start(['--workers', '1', '--max-connections', '10', APP], { env: { APP_MAX_CONNECTIONS: '5' } });
  t.teardown(() => acc.stop('SIGKILL'));
  await untilValue(acc.metricsPort, 'acceptor_worker_capacity{worker="1"}', 5);
  const a = rawRequest(acc.port, '/hold');
  await untilValue(acc.metricsPort, 'acceptor_worker_connections{worker="1"}', 1);
  const b = rawRequest(acc.port, '/limit?n=1&block=2000');
  await acc.waitFor((l) => l.msg === 'app: limit 1, busy for 2000 ms');
  const c = await within(rawRequest(acc.port, '/').response, 'the one past the limit answered', acc);
  t.same([c.status, c.body], [503, 'server busy\n'], 'told busy by the worker, not served past the limit');
  t.same((await within(b.response, 'the /limit request answered', acc)).body, 'limit 1\n');
  await untilValue(acc.metricsPort, 'acceptor_worker_capacity{worker="1"}', 1);
  const m = await scrape(acc.metricsPort);
  t.same([handled(m), ...reasons(m)], [2, 0, 1], 'handled 2 (the hold, the /limit); worker_full 1');
  a.socket.destroy();
  // Served at capacity 1 only if the refused connection's slot was freed (its close reported).
  const drops = JSON.parse((await within(get(acc.port, '/drops'), 'GET /drops served', acc)).body) as Record<string, unknown>[];
  t.equal(drops.length, 1, 'one drop');
  t.match(drops[0], { localPort: acc.port, remoteAddress: '127.0.0.1' });
});

t.test("shared: the worker accepts, so past the app's limit it says busy (worker_full) where node closes unanswered, and 'drop' hears of it", async (t) => {
  const acc = await start(['--workers', '1', '--strategy', 'shared', '--max-connections', '10', APP], { env: { APP_MAX_CONNECTIONS: '1' } });
  t.teardown(() => acc.stop('SIGKILL'));
  t.equal(value(await scrape(acc.metricsPort), 'acceptor_worker_capacity{worker="1"}'), 1, "the app's limit, shown in every strategy");
  const a = rawRequest(acc.port, '/hold');
  await untilValue(acc.metricsPort, 'acceptor_worker_connections{worker="1"}', 1);
  const b = await within(rawRequest(acc.port, '/').response, 'the 2nd answered', acc);
  t.same([b.status, b.body], [503, 'server busy\n'], 'told busy, not closed unanswered');
  const m = await scrape(acc.metricsPort);
  t.same([handled(m), ...reasons(m)], [1, 0, 1], 'handled 1; worker_full 1');
  a.socket.destroy();
  await untilValue(acc.metricsPort, 'acceptor_worker_connections{worker="1"}', 0);
  const drops = JSON.parse((await get(acc.port, '/drops')).body) as Record<string, unknown>[];
  t.equal(drops.length, 1, 'one drop');
  t.match(drops[0], { localAddress: '127.0.0.1', localPort: acc.port, localFamily: 'IPv4', remoteAddress: '127.0.0.1', remoteFamily: 'IPv4', remotePort: Number });
});

t.test('blocked: by the server\'s blockList where it has one, by the client\'s address and family', async (t) => {
  const list = new BlockList();
  list.addAddress('127.0.0.2');
  list.addAddress('::2', 'ipv6');
  const server = Object.assign(createServer(), { blockList: list });
  const from = (remoteAddress: string | undefined): Socket => ({ remoteAddress }) as unknown as Socket;
  t.same(['127.0.0.2', '127.0.0.1', '::2', '::1', undefined].map((a) => blocked(server, from(a))), [true, false, true, false, false]);
  t.equal(blocked(createServer(), from('127.0.0.2')), false, 'no blockList: none blocked');
});

// Node keeps a server's blockList from 22.13 (and 23.4); before, it applies none, and neither does the acceptor.
const keepsBlockList = ((): boolean => {
  const list = new BlockList();
  return (new Server({ blockList: list } as ServerOpts) as Server & { blockList?: BlockList }).blockList === list;
})();

/** All the server sent a connection from `localAddress` before it closed. */
const from = (localAddress: string, port: number): Promise<string> => rawClient(port, '127.0.0.1', localAddress).closed.then((r) => r.data);

for (const strategy of ['handoff', 'shared'] as const) {
  t.test(`${strategy}: the app's blockList, as node ${process.version} applies it: ${keepsBlockList ? 'a denied client closed unanswered, counted blocked' : 'none (this Node keeps no blockList)'}`, async (t) => {
    const acc = await start(['--workers', '1', '--strategy', strategy, '--protocol', 'tcp', fixture('apps/block-list.mjs')]);
    t.teardown(() => acc.stop('SIGKILL'));
    t.equal(await within(from('127.0.0.2', acc.port), 'the connection from 127.0.0.2 ends', acc), keepsBlockList ? '' : 'hello\n');
    t.equal(await within(from('127.0.0.1', acc.port), 'the connection from 127.0.0.1 ends', acc), 'hello\n', 'another client served');
    const m = await scrape(acc.metricsPort);
    t.same([handled(m), value(m, 'acceptor_connections_rejected_total{reason="blocked"}'), value(m, 'acceptor_connections_rejected_total{reason="worker_full"}')], keepsBlockList ? [1, 1, 0] : [2, 0, 0]);
  });
}

// Node's accept checks the limit first, then the blockList: a denied client that comes past the
// limit is refused for the limit ('drop'). Under `shared` the worker accepts, so it meets both.
t.test(`shared: past the app's maxConnections, a client its blockList denies is refused for the limit, as node's accept orders them: told busy, counted worker_full, not blocked${keepsBlockList ? '' : ' (this Node keeps no blockList: the same)'}`, async (t) => {
  const acc = await start(['--workers', '1', '--strategy', 'shared', '--protocol', 'tcp', fixture('apps/block-list.mjs')], { env: { APP_MAX_CONNECTIONS: '1' } });
  t.teardown(() => acc.stop('SIGKILL'));
  const held = rawClient(acc.port, '127.0.0.1', '127.0.0.1');
  await within(until(() => held.data() === 'hello\n'), 'the first connection served', acc);
  t.equal(await within(from('127.0.0.2', acc.port), 'the denied client past the limit ends', acc), 'busy\r\n');
  held.s.end();
  t.equal((await within(held.closed, 'the held connection ends', acc)).data, 'hello\n');
  const m = await scrape(acc.metricsPort);
  t.same([handled(m), value(m, 'acceptor_connections_rejected_total{reason="worker_full"}'), value(m, 'acceptor_connections_rejected_total{reason="blocked"}')], [1, 1, 0]);
});
