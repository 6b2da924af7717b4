// The default strategy's admission is exact: W×C slots, then B waiting, then busy at once.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:net';
import { start, fixture, sleep, until, TRANSPORTS } from '../helpers/cli.js';
import { scrape, value, workerConnections } from '../helpers/metrics.js';
import { rawRequest, type Pending } from '../helpers/http.js';

/** Opens connections one after another, so the primary accepts them in this order. */
async function openInOrder(port: number, n: number, path = (i: number) => `/${i}`): Promise<Pending[]> {
  const out: Pending[] = [];
  for (let i = 0; i < n; i++) {
    const p = rawRequest(port, path(i));
    await p.connected;
    out.push(p);
  }
  return out;
}

for (const transport of TRANSPORTS) {
  t.test(`${transport}: W×C busy + B waiting: the next connections are told 503 at once, the rest served`, async (t) => {
    const dir = t.testdir();
    const holdFile = join(dir, 'release');
    const W = 2, C = 2, B = 3, EXTRA = 5;
    const acc = await start(['--transport', transport, '--workers', String(W), '--max-connections', String(C), '--backlog', String(B), '--handler', fixture('hold.mjs')], { env: { HOLD_FILE: holdFile } });
    t.teardown(() => acc.stop('SIGKILL'));

    const before = await scrape(acc.metricsPort);
    const admitted = await openInOrder(acc.port, W * C + B);
    // While they are held: each worker has exactly C (least-loaded, C enforced per worker) and
    // exactly B wait in the queue.
    const held = await until(async () => {
      const m = await scrape(acc.metricsPort);
      return value(m, 'acceptor_queue_depth') === B && value(m, 'acceptor_worker_connections{worker="1"}') === C && value(m, 'acceptor_worker_connections{worker="2"}') === C ? m : undefined;
    }, 10_000).catch(async () => scrape(acc.metricsPort)) as string;
    t.equal(value(held, 'acceptor_worker_connections{worker="1"}'), C, 'worker 1 holds C');
    t.equal(value(held, 'acceptor_worker_connections{worker="2"}'), C, 'worker 2 holds C');
    t.equal(value(held, 'acceptor_queue_depth'), B, 'B wait');
    t.equal(value(held, 'acceptor_worker_max_connections'), C);
    t.equal(value(held, 'acceptor_queue_capacity'), B);
    const accepted = value(held, 'acceptor_connections_accepted_total')! - value(before, 'acceptor_connections_accepted_total')!;
    const handled = value(held, 'acceptor_connections_handled_total{worker="1"}')! + value(held, 'acceptor_connections_handled_total{worker="2"}')!;
    t.equal(accepted, handled + value(held, 'acceptor_queue_depth')!, 'accepted = handled + rejected (none yet) + queue depth');
    const extra = await openInOrder(acc.port, EXTRA);
    const conns = [...admitted, ...extra];
    const settled = new Set<number>();
    conns.forEach((c, i) => void c.response.then(() => settled.add(i)));

    // The refused ones answer at once, while every admitted one is still held.
    const refused = await Promise.all(extra.map((c) => c.response));
    for (const r of refused) {
      t.ok(r.ms < 1000, `told busy in ${r.ms} ms`);
      t.equal(r.status, 503, 'told busy');
      t.equal(r.headers['retry-after'], '1', 'with Retry-After');
      t.equal(r.headers['connection'], 'close', 'and Connection: close');
    }
    await sleep(200); // a window in which no admitted connection may be answered
    t.same([...settled].filter((i) => i < W * C + B), [], 'no admitted connection was answered before release');
    const busy = await scrape(acc.metricsPort);
    const delta = (series: string): number => value(busy, series)! - value(before, series)!;
    const rejected = ['queue_full', 'queue_timeout', 'no_worker', 'shutting_down'].reduce((n, r) => n + delta(`acceptor_connections_rejected_total{reason="${r}"}`), 0);
    t.equal(delta('acceptor_connections_rejected_total{reason="queue_full"}'), EXTRA, 'each refusal counted queue_full');
    t.equal(delta('acceptor_connections_accepted_total'), delta('acceptor_connections_handled_total{worker="1"}') + delta('acceptor_connections_handled_total{worker="2"}') + rejected + value(busy, 'acceptor_queue_depth')!, 'accepted = handled + rejected + queue depth');

    writeFileSync(holdFile, '');
    const served = await Promise.all(conns.slice(0, W * C + B).map((c) => c.response));
    t.same(served.map((r) => r.status), Array(W * C + B).fill(200), 'every admitted connection is served');
    t.equal(served.filter((r) => r.status === 200).length + refused.filter((r) => r.status === 503).length, conns.length, 'every connection accounted for');
  });

  t.test(`${transport}: waiting connections are handed over oldest first`, async (t) => {
    const dir = t.testdir();
    const holdFile = join(dir, 'release');
    const acc = await start(['--transport', transport, '--workers', '1', '--max-connections', '1', '--backlog', '5', '--handler', fixture('hold-seq.mjs')], { env: { HOLD_FILE: holdFile } });
    t.teardown(() => acc.stop('SIGKILL'));
    const conns = await openInOrder(acc.port, 6);
    await until(async () => value(await scrape(acc.metricsPort), 'acceptor_queue_depth') === 5);
    writeFileSync(holdFile, '');
    const bodies = (await Promise.all(conns.map((c) => c.response))).map((r) => r.body.trim());
    // One slot: the worker starts request k+1 only after k closed, so its sequence is the queue order.
    t.same(bodies, ['/0 1', '/1 2', '/2 3', '/3 4', '/4 5', '/5 6']);
  });

  t.test(`${transport}: between equally loaded workers, the choice goes round them in turn`, async (t) => {
    const acc = await start(['--transport', transport, '--workers', '3', '--max-connections', '100', '--handler', fixture('hold.mjs')]);
    t.teardown(() => acc.stop('SIGKILL'));
    const idle = async (): Promise<boolean> => workerConnections(await scrape(acc.metricsPort), 3).every((n) => n === 0);
    const pids: string[] = [];
    for (let i = 0; i < 6; i++) {
      // Every worker idle (its close reported, the primary's slot freed): a three-way tie.
      await until(idle);
      pids.push((await rawRequest(acc.port).response).body.trim());
    }
    t.equal(new Set(pids.slice(0, 3)).size, 3, `three different workers first (${pids.join(', ')})`);
    t.same(pids.slice(3), pids.slice(0, 3), 'then the same turn again');
  });

  t.test(`${transport}: the next connection goes to the least-loaded worker, not the next in turn`, async (t) => {
    const acc = await start(['--transport', transport, '--workers', '2', '--max-connections', '100', '--handler', fixture('hold.mjs')]);
    t.teardown(() => acc.stop('SIGKILL'));
    const total = async (): Promise<number> => workerConnections(await scrape(acc.metricsPort), 2).reduce((a, b) => a + b, 0);
    // One connection held open without a request: it keeps a slot on one worker (X).
    const idle = connect(acc.port, '127.0.0.1');
    t.teardown(() => idle.destroy());
    await until(async () => (await total()) === 1);
    // The other worker (Y) is now less loaded and is next in turn: it serves this one.
    const first = (await rawRequest(acc.port).response).body.trim();
    await until(async () => (await total()) === 1);
    // X is next in turn now, but still holds one connection; Y holds none: Y again.
    const second = (await rawRequest(acc.port).response).body.trim();
    t.equal(second, first, `the less-loaded worker again (${first}, then ${second})`);
  });

  t.test(`${transport}: a connection that waits longer than --queue-timeout is told busy, each after its own wait`, async (t) => {
    const dir = t.testdir();
    const holdFile = join(dir, 'release');
    const acc = await start(['--transport', transport, '--workers', '1', '--max-connections', '1', '--backlog', '4', '--queue-timeout', '1s', '--handler', fixture('hold.mjs')], { env: { HOLD_FILE: holdFile } });
    t.teardown(() => acc.stop('SIGKILL'));
    const [held, first] = await openInOrder(acc.port, 2);
    // The second arrives half a timeout later: its deadline is its own, not the head's.
    await sleep(500);
    const [second] = await openInOrder(acc.port, 1);
    const timedOut = await Promise.all([first!, second!].map((c) => c.response));
    t.same(timedOut.map((r) => r.status), [503, 503], 'both queued connections are told busy');
    for (const r of timedOut) {
      t.ok(r.ms >= 950, `after its own wait of the queue timeout (${r.ms} ms)`);
      t.ok(r.ms < 5000, `not long after it (${r.ms} ms)`);
    }
    writeFileSync(holdFile, '');
    t.equal((await held!.response).status, 200, 'the one in the slot is served');
  });
}
