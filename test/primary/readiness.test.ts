// /healthz and /readyz: what a load balancer sees, from the primary, without the metrics token.
import t, { type Test } from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { start, fixture, until, type Running } from '../helpers/cli.js';
import { get, rawRequest, type Pending, type RawResponse } from '../helpers/http.js';
import { read, untilValue } from '../helpers/metrics.js';
import { Readiness } from '../../src/primary/readiness.js';
import { Counters } from '../../src/metrics/counters.js';
import { REJECT_REASONS } from '../../src/admission/busy.js';

const probe = async (port: number, path: string): Promise<string> => {
  const r = await get(port, path);
  return `${r.status} ${r.body.trim()}`;
};

/** One worker (one slot) running hold.mjs, the slot taken by a held request. `release` ends the hold. */
async function oneHeld(t: Test, args: string[]): Promise<{ acc: Running; held: Pending[]; release: () => Promise<RawResponse[]> }> {
  const hold = join(t.testdir(), 'release');
  const acc = await start(['--workers', '1', '--max-connections', '1', '--handler', fixture('hold.mjs'), ...args], { env: { HOLD_FILE: hold } });
  t.teardown(() => acc.stop('SIGKILL'));
  const held = [rawRequest(acc.port)];
  await untilValue(acc.metricsPort, 'acceptor_worker_connections{worker="1"}', 1);
  const release = (): Promise<RawResponse[]> => {
    writeFileSync(hold, '');
    return Promise.all(held.map((h) => h.response));
  };
  return { acc, held, release };
}

t.test('probes answer without the token; /metrics still needs it', async (t) => {
  const acc = await start(['--workers', '1', '--metrics-token', 's3cret']);
  t.teardown(() => acc.stop('SIGKILL'));
  t.equal(await probe(acc.metricsPort, '/healthz'), '200 ok');
  t.equal(await probe(acc.metricsPort, '/readyz'), '200 ready');
  t.equal((await get(acc.metricsPort, '/metrics')).status, 401);
  t.equal(await read(acc.metricsPort, 'acceptor_ready').catch(() => -1), -1, 'the metric is behind the token too');
});

// The threshold given, and by default half of --backlog: 2 either way.
for (const args of [['--backlog', '4', '--ready-queue-threshold', '2'], ['--backlog', '4']]) t.test(`shedding: 503 while the queue is above the threshold or a client was told busy in the last second (${args.join(' ')})`, async (t) => {
  const { acc, held, release } = await oneHeld(t, args);
  held.push(rawRequest(acc.port), rawRequest(acc.port));
  await untilValue(acc.metricsPort, 'acceptor_queue_depth', 2);
  t.equal(await probe(acc.metricsPort, '/readyz'), '200 ready', '2 waiting: at the threshold, not above');
  held.push(rawRequest(acc.port));
  await untilValue(acc.metricsPort, 'acceptor_queue_depth', 3);
  t.equal(await probe(acc.metricsPort, '/readyz'), '503 not ready: shedding load', '3 waiting: above it');
  t.equal(await read(acc.metricsPort, 'acceptor_ready'), 0, 'acceptor_ready 0');
  t.equal(await probe(acc.metricsPort, '/healthz'), '200 ok', 'healthy all the same');
  await release();
  await until(async () => (await probe(acc.metricsPort, '/readyz')) === '200 ready', 5000);
  t.equal(await read(acc.metricsPort, 'acceptor_ready'), 1, 'ready again once the queue is empty');
});

t.test('a busy answer makes it not ready for a second, then ready again', async (t) => {
  const { acc, held, release } = await oneHeld(t, ['--backlog', '1', '--ready-queue-threshold', '5']);
  held.push(rawRequest(acc.port));
  await untilValue(acc.metricsPort, 'acceptor_queue_depth', 1);
  t.equal(await probe(acc.metricsPort, '/readyz'), '200 ready', 'full, but nobody refused yet');
  const t0 = Date.now();
  t.equal((await rawRequest(acc.port).response).status, 503, 'the next is told busy');
  t.equal(await probe(acc.metricsPort, '/readyz'), '503 not ready: shedding load');
  await release();
  await until(async () => (await probe(acc.metricsPort, '/readyz')) === '200 ready', 5000);
  const ms = Date.now() - t0;
  t.ok(ms >= 1000 && ms < 3000, `ready again ${ms} ms after the busy answer (held for 1 s)`);
});

t.test('SIGTERM: /readyz says draining at once, while in-flight work finishes', async (t) => {
  const { acc, release } = await oneHeld(t, []);
  acc.proc.kill('SIGTERM');
  await acc.waitFor((l) => l.msg === 'shutting down: draining');
  t.equal(await probe(acc.metricsPort, '/readyz'), '503 not ready: draining');
  t.equal(await probe(acc.metricsPort, '/healthz'), '200 ok', 'alive while it drains');
  t.equal((await release())[0]!.status, 200);
  t.equal((await acc.exited).code, 0);
});

t.test('no worker ready: 503 while the only worker is in crash backoff', async (t) => {
  const acc = await start(['--workers', '1', '--handler', fixture('crash-soon.mjs')], { env: { MARKER: join(t.testdir(), 'crash'), CRASH_AFTER_MS: '300' } });
  t.teardown(() => acc.stop('SIGKILL'));
  writeFileSync(join(t.testdir(), 'crash'), '');
  process.kill(Number((await acc.waitFor((l) => l.msg === 'worker ready')).workerPid), 'SIGKILL');
  await until(async () => (await probe(acc.metricsPort, '/readyz')) === '503 not ready: no worker ready', 5000);
  t.pass('503 with the reason');
});

t.test('hysteresis: shedding starts above the threshold and ends at half of it, one second after the last busy answer', async (t) => {
  const counters = new Counters();
  let depth = 0;
  let ready = 1;
  const r = new Readiness({ readyWorkers: () => ready, queueDepth: () => depth, counters, threshold: 10 });
  t.teardown(() => r.stop());
  t.equal(r.reason(), undefined);
  depth = 10;
  t.equal(r.reason(), undefined, 'at the threshold: ready');
  depth = 11;
  t.equal(r.reason(), 'shedding load', 'above it: shedding');
  depth = 6;
  t.equal(r.reason(), 'shedding load', 'still above half: still shedding (no flapping at the threshold)');
  depth = 5;
  t.equal(r.reason(), undefined, 'at half: ready');
  depth = 10;
  t.equal(r.reason(), undefined, 'and stays ready up to the threshold');
  depth = 0;
  counters.rejected.queue_full++;
  t.equal(r.reason(), 'shedding load', 'a busy answer: shedding');
  counters.rejected.shutting_down++;
  ready = 0;
  t.equal(r.reason(), 'no worker ready');
  r.drain();
  t.equal(r.reason(), 'draining', 'draining comes first');
});

t.test('a queue that passes the threshold while nobody asks still starts shedding: the state is sampled on a timer', async (t) => {
  let depth = 11;
  const r = new Readiness({ readyWorkers: () => 1, queueDepth: () => depth, counters: new Counters(), threshold: 10 });
  t.teardown(() => r.stop());
  // No reason() call while the queue is above the threshold: only the timer can see it. (Its
  // state is read directly: asking would sample, which is what this must do without.)
  await until(() => ((r as unknown as { shedding: boolean }).shedding ? true : undefined), 5000);
  depth = 6;
  t.equal(r.reason(), 'shedding load', 'back under the threshold but above half when asked: still shedding');
});

t.test('which refusals mean shedding: queue_full, queue_timeout, no_worker, displaced; not worker_full, shutting_down or client_limit (one client\'s refusals)', async (t) => {
  for (const reason of REJECT_REASONS) {
    const counters = new Counters();
    const r = new Readiness({ readyWorkers: () => 1, queueDepth: () => 0, counters, threshold: 10 });
    t.teardown(() => r.stop());
    t.equal(r.reason(), undefined, `${reason}: ready before`);
    counters.rejected[reason]++;
    t.equal(r.reason(), ['queue_full', 'queue_timeout', 'no_worker', 'displaced'].includes(reason) ? 'shedding load' : undefined, reason);
  }
});
