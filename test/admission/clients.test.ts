// Per-client admission, with real clients from distinct loopback addresses (127.0.0.2, .3, …):
// the fair queue's turns and displacement, --max-connections-per-client, what a worker's death
// releases, memory that follows the clients connected, and sticky sessions.
import t from 'tap';
import { connect } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { io as ioClient } from 'socket.io-client';
import { fixture, sleep, start, until, workerPids, type Running } from '../helpers/cli.js';
import { requestOn, type Pending } from '../helpers/http.js';
import { scrape, untilValue, value } from '../helpers/metrics.js';
import { clientKey } from '../../src/admission/client.js';
import { ClientSlots, stickySlot } from '../../src/admission/clients.js';

/** One request (`Connection: close`) from a given loopback address. */
const from = (acc: Running, local: string, path = '/'): Pending => requestOn(connect({ port: acc.port, host: '127.0.0.1', localAddress: local }), 'connect', path, '127.0.0.1');
const rejected = async (acc: Running, reason: string): Promise<number | undefined> => value(await scrape(acc.metricsPort), `acceptor_connections_rejected_total{reason="${reason}"}`);

for (const order of ['fair', 'fifo'] as const) {
  t.test(`--queue ${order}: who is served next, and who is told busy when the queue is full`, async (t) => {
    const dir = t.testdir();
    const acc = await start(['--workers', '1', '--max-connections', '1', '--backlog', '4', '--queue', order, '--handler', fixture('hold-order.mjs')], { env: { HOLD_DIR: dir } });
    t.teardown(() => acc.stop('SIGKILL'));
    const hog = (p: string): Pending => from(acc, '127.0.0.2', p);
    const h1 = hog('/h1');
    await untilValue(acc.metricsPort, 'acceptor_worker_connections{worker="1"}', 1);
    const queued = [hog('/h2'), hog('/h3'), hog('/h4')];
    await untilValue(acc.metricsPort, 'acceptor_queue_depth', 3);
    const g1 = from(acc, '127.0.0.3', '/g1');
    await untilValue(acc.metricsPort, 'acceptor_queue_depth', 4);
    const h5 = hog('/h5');
    t.equal((await h5.response).status, 503, "full, and the hog is the heaviest: the hog's newcomer is refused");
    const g2 = from(acc, '127.0.0.3', '/g2');
    if (order === 'fair') {
      t.equal((await queued[2]!.response).status, 503, "the good client's second displaces the hog's newest waiting (/h4)");
      t.same([await rejected(acc, 'queue_full'), await rejected(acc, 'displaced')], [1, 1]);
    } else {
      t.equal((await g2.response).status, 503, 'fifo: the newcomer is refused, whoever it is');
      t.same([await rejected(acc, 'queue_full'), await rejected(acc, 'displaced')], [2, 0]);
    }
    for (const f of ['h1', 'h2', 'h3', 'h4', 'g1', 'g2']) writeFileSync(join(dir, f), '');
    const served = (await Promise.all([h1, ...queued, g1, g2].map((p) => p.response))).filter((r) => r.status === 200).map((r) => r.body);
    const inOrder = served.sort((a, b) => Number(a.split(' ')[1]) - Number(b.split(' ')[1])).map((b) => b.split(' ')[0]);
    t.same(inOrder, order === 'fair' ? ['/h1', '/h2', '/g1', '/h3', '/g2'] : ['/h1', '/h2', '/h3', '/h4', '/g1'], order === 'fair' ? 'the two clients take turns' : 'arrival order');
  });
}

t.test('--max-connections-per-client: a hog holding idle connections and reconnecting in a loop; a well-behaved client is always served', async (t) => {
  const acc = await start(['--workers', '2', '--max-connections', '50', '--backlog', '100', '--max-connections-per-client', '20']);
  t.teardown(() => acc.stop('SIGKILL'));
  // 40 idle connections: the first 20 are held (the worker waits for their request), the rest told busy at once.
  const held = Array.from({ length: 40 }, () => connect({ port: acc.port, host: '127.0.0.1', localAddress: '127.0.0.2' }).on('error', () => {}));
  t.teardown(() => held.forEach((s) => s.destroy()));
  await untilValue(acc.metricsPort, 'acceptor_connections_rejected_total{reason="client_limit"}', 20);
  t.equal(value(await scrape(acc.metricsPort), 'acceptor_clients_at_limit'), 1, 'one client at its limit');
  let stop = false;
  let hogTries = 0;
  const hogLoop = (async () => {
    while (!stop) {
      hogTries++;
      await from(acc, '127.0.0.2').response;
    }
  })();
  const good: number[] = [];
  for (let i = 0; i < 20; i++) {
    good.push((await from(acc, '127.0.0.3').response).status);
    await sleep(100);
  }
  stop = true;
  await hogLoop;
  t.same(good, Array(20).fill(200), 'the good client: 20 of 20 served, 10 a second, while the hog ran');
  const m = await scrape(acc.metricsPort);
  t.equal(value(m, 'acceptor_connections_rejected_total{reason="client_limit"}'), 20 + hogTries, `every one of the hog's ${hogTries} reconnects told busy (client_limit)`);
  t.equal(value(m, 'acceptor_connections_rejected_total{reason="queue_full"}'), 0);
  const line = acc.lines.find((l) => l.msg === 'clients at --max-connections-per-client told busy');
  t.match(line, { limit: 20, clients: [{ client: '127.0.0.2/32', connections: 20 }] }, 'a log line names the client');
  t.equal(await (async () => (await fetch(`http://127.0.0.1:${acc.metricsPort}/readyz`)).status)(), 200, "/readyz stays ready: one client's refusals are not shedding");
});

t.test('what a client holds is released when its connections close, and when their worker dies', async (t) => {
  const acc = await start(['--workers', '1', '--max-connections-per-client', '3']);
  t.teardown(() => acc.stop('SIGKILL'));
  const open = (): ReturnType<typeof connect> => connect({ port: acc.port, host: '127.0.0.1', localAddress: '127.0.0.4' }).on('error', () => {});
  const three = [open(), open(), open()];
  await untilValue(acc.metricsPort, 'acceptor_clients_at_limit', 1);
  t.equal((await from(acc, '127.0.0.4').response).status, 503, 'the fourth: told busy');
  three[0]!.destroy();
  await untilValue(acc.metricsPort, 'acceptor_clients_at_limit', 0);
  t.equal((await from(acc, '127.0.0.4').response).status, 200, 'one closed: one more served');
  // Its close told (the two idle ones left), a third idle one brings the client to its limit again.
  await untilValue(acc.metricsPort, 'acceptor_worker_connections{worker="1"}', 2);
  const third = open();
  t.teardown(() => [...three, third].forEach((s) => s.destroy()));
  await untilValue(acc.metricsPort, 'acceptor_clients_at_limit', 1);
  const [pid] = workerPids(acc);
  process.kill(pid!, 'SIGKILL');
  await until(async () => value(await scrape(acc.metricsPort), 'acceptor_workers{state="ready"}') === 1 && !workerPids(acc).includes(pid!));
  const m = await scrape(acc.metricsPort);
  t.same([value(m, 'acceptor_clients_connected'), value(m, 'acceptor_clients_at_limit')], [0, 0], "the dead worker's connections are no longer the client's");
  const again = await Promise.all([from(acc, '127.0.0.4'), from(acc, '127.0.0.4'), from(acc, '127.0.0.4')].map((p) => p.response));
  t.same(again.map((r) => r.status), [200, 200, 200]);
});

t.test('memory follows the clients connected: 300 clients come and go, none is left', async (t) => {
  const acc = await start(['--workers', '2', '--max-connections-per-client', '2']);
  t.teardown(() => acc.stop('SIGKILL'));
  const statuses = await Promise.all(Array.from({ length: 300 }, (_, i) => from(acc, `127.0.${1 + Math.floor(i / 200)}.${1 + (i % 200)}`).response.then((r) => r.status)));
  t.same(statuses, Array(300).fill(200));
  await untilValue(acc.metricsPort, 'acceptor_clients_connected', 0);
  t.pass('no entry left for any of the 300');
});

/** Two loopback addresses whose clients go to different worker slots, by the acceptor's own hash. */
function twoSlots(workers: number): [string, string] {
  const p = { v4: 32, v6: 64 };
  const a = '127.0.0.2';
  for (let i = 3; i < 250; i++) if (stickySlot(clientKey(`127.0.0.${i}`, p), workers) !== stickySlot(clientKey(a, p), workers)) return [a, `127.0.0.${i}`];
  throw new Error('no two slots');
}

t.test('--sticky client: a client’s connections all go to its slot’s worker, the replacement included; a full slot makes them wait', async (t) => {
  const dir = t.testdir();
  const acc = await start(['--workers', '2', '--sticky', 'client', '--max-connections', '2', '--handler', fixture('hold.mjs')], { env: { HOLD_DIR: dir } });
  t.teardown(() => acc.stop('SIGKILL'));
  writeFileSync(join(dir, 'now'), '');
  const [a, b] = twoSlots(2);
  const pidOf = async (addr: string): Promise<string> => /served by (\d+)/.exec((await from(acc, addr, '/now').response).body)![1]!;
  const pa = await Promise.all(Array.from({ length: 8 }, () => pidOf(a)));
  const pb = await Promise.all(Array.from({ length: 8 }, () => pidOf(b)));
  t.equal(new Set(pa).size, 1, `${a}: one worker`);
  t.equal(new Set(pb).size, 1, `${b}: one worker`);
  t.not(pa[0], pb[0], 'the other slot’s');
  process.kill(Number(pa[0]), 'SIGKILL');
  await until(async () => value(await scrape(acc.metricsPort), 'acceptor_workers{state="ready"}') === 2 && !workerPids(acc).includes(Number(pa[0])));
  const after = await Promise.all(Array.from({ length: 8 }, () => pidOf(a)));
  t.equal(new Set(after).size, 1, 'still one worker');
  t.not(after[0], pa[0], 'the replacement, in the same slot');
  t.equal(await pidOf(b), pb[0], 'the other client unmoved');
  // a's slot full (2 held): a's third waits although b's worker has room.
  const holdA = [from(acc, a, '/x1'), from(acc, a, '/x2')];
  const slotA = stickySlot(clientKey(a, { v4: 32, v6: 64 }), 2);
  await untilValue(acc.metricsPort, `acceptor_worker_connections{worker="${slotA}"}`, 2);
  const third = from(acc, a, '/now');
  await untilValue(acc.metricsPort, 'acceptor_queue_depth', 1);
  t.equal(await pidOf(b), pb[0], "b is served meanwhile, by its own worker");
  writeFileSync(join(dir, 'x1'), '');
  t.equal((await third.response).status, 200, 'a slot freed: the waiting one served');
  writeFileSync(join(dir, 'x2'), '');
  await Promise.all(holdA.map((p) => p.response));
});

t.test("socket.io's default transports (long polling, then upgrade) with 2 workers and --sticky client", async (t) => {
  const acc = await start(['--workers', '2', '--sticky', 'client', fixture('apps/socketio.mjs')]);
  t.teardown(() => acc.stop('SIGKILL'));
  const clients = Array.from({ length: 6 }, () => ioClient(`http://127.0.0.1:${acc.port}`, { reconnection: false }));
  t.teardown(() => clients.forEach((s) => s.close()));
  const errors: string[] = [];
  // A session whose polling requests reach two workers fails ("xhr post error"): each client closes then.
  for (const s of clients) s.io.engine.on('close', (reason: string) => errors.push(reason));
  const acks = await Promise.all(clients.map((s, i) => new Promise<string>((resolve) => {
    s.on('connect', () => s.emit('echo', `m${i}`, resolve));
    s.on('connect_error', (e) => resolve(`error: ${e.message}`));
    s.on('disconnect', (reason) => resolve(`disconnected: ${reason}`));
  })));
  t.same(acks.map((a) => a.replace(/ from \d+$/, '')), clients.map((_, i) => `echo m${i}`));
  await until(() => errors.length > 0 || clients.every((s) => s.io.engine.transport.name === 'websocket'));
  t.same(errors, [], 'every session upgraded, none closed');
});

t.test('ClientSlots: what each client holds, per worker too; 100,000 distinct clients come and go and leave no entry', async (t) => {
  const slots = new ClientSlots();
  const w1: { keys?: Map<number, number> } = {};
  const w2: { keys?: Map<number, number> } = {};
  slots.hold(w1, 7);
  slots.hold(w1, 7);
  slots.hold(w2, 7);
  slots.hold(w2, 8);
  t.same([slots.heldBy(7), slots.heldBy(8), slots.clients], [3, 1, 2]);
  slots.release(w1, 7);
  t.equal(slots.heldBy(7), 2);
  slots.release(w1, 8);
  t.equal(slots.heldBy(8), 1, 'a release from a worker that never held the key changes nothing');
  slots.releaseAll(w2);
  t.same([slots.heldBy(7), slots.heldBy(8), slots.clients, w2.keys], [1, 0, 1, undefined], "worker 2's death releases exactly what it held");
  slots.release(w2, 7);
  t.equal(slots.heldBy(7), 1, 'a late report from the dead worker releases nothing more');
  slots.release(w1, 7);
  t.same([slots.clients, w1.keys?.size], [0, 0]);
  for (let i = 0; i < 100_000; i++) slots.hold(w1, 2 ** 32 + i);
  t.equal(slots.clients, 100_000);
  for (let i = 0; i < 100_000; i++) slots.release(w1, 2 ** 32 + i);
  t.same([slots.clients, w1.keys?.size], [0, 0], 'none left, in the totals or the worker');
});

t.test('stickySlot: stable, spread over the slots, and consistent when a slot is added', async (t) => {
  const p = { v4: 32, v6: 64 };
  const keys = Array.from({ length: 10_000 }, (_, i) => clientKey(`10.${(i >> 8) & 255}.${i & 255}.1`, p));
  const four = keys.map((k) => stickySlot(k, 4));
  t.same(keys.map((k) => stickySlot(k, 4)), four, 'the same slot every time');
  const per = [1, 2, 3, 4].map((s) => four.filter((x) => x === s).length);
  t.ok(per.every((n) => n > 2000 && n < 3000), `spread: ${per.join(', ')} of 10,000`);
  const five = keys.map((k) => stickySlot(k, 5));
  const moved = five.filter((s, i) => s !== four[i]);
  t.ok(moved.every((s) => s === 5), 'a fifth slot takes clients only for itself: none moves between the other four');
  t.ok(moved.length > 1500 && moved.length < 2500, `about a fifth move (${moved.length})`);
});
