// The descriptor limit: the soft one is the hard one in the primary and its workers (Node raises it
// as it starts), logged; --max-connections and --backlog capped at what it can hold, with a warning.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type Socket } from 'node:net';
import { start, workerPids, fixture, until, TRANSPORTS } from '../helpers/cli.js';
import { get, parseResponse, rawRequest } from '../helpers/http.js';
import { scrape, value, read } from '../helpers/metrics.js';
import { listenQueueDepth } from '../../src/metrics/kernel.js';

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

for (const transport of TRANSPORTS) t.test(`${transport}: a hard limit too low for --max-connections and --backlog caps both, saying so; held clients are served, wait or are told busy, none is dropped`, { skip }, async (t) => {
  const dir = t.testdir();
  const acc = await start(['--workers', '2', '--transport', transport, '--max-connections', '1000', '--backlog', '511', '--queue-timeout', '60s', '--handler', fixture('hold.mjs')], { wrap: ['prlimit', '--nofile=256:256'], env: { HOLD_FILE: join(dir, 'release') } });
  t.teardown(() => acc.stop('SIGKILL'));
  t.match(acc.lines.find((l) => String(l.msg).startsWith('descriptor limit')), { soft: 256, hard: 256 });
  const warnings = acc.lines.filter((l) => l.level === 40 && /capped at .*the descriptor limit/.test(String(l.msg)));
  t.match(warnings, [
    { limit: 256, maxConnections: 1000, capped: 192, msg: '--max-connections capped at the descriptor limit less 64 for the worker itself: Raise the hard limit (ulimit -Hn, systemd LimitNOFILE=) to allow more.' },
    { limit: 256, backlog: 511, capped: 94, msg: '--backlog capped at half the descriptor limit less 64 and two per worker for the primary itself: Raise the hard limit (ulimit -Hn, systemd LimitNOFILE=) to allow more.' },
  ]);
  t.equal(warnings.length, 2);
  let m = await scrape(acc.metricsPort);
  t.same([value(m, 'acceptor_worker_max_connections'), value(m, 'acceptor_queue_capacity')], [192, 94], 'what admission uses');
  const clients = Array.from({ length: 450 }, () => rawRequest(acc.port));
  await Promise.all(clients.map((c) => c.connected));
  if (transport === 'fdpass') {
    // 450 clients: 2 × 192 held by the workers, 66 waiting. Uncapped, a worker would have run out
    // of descriptors and the kernel would have dropped hand-offs: clients closed with no answer.
    await until(async () => {
      m = await scrape(acc.metricsPort);
      return value(m, 'acceptor_queue_depth') === 66 && value(m, 'acceptor_worker_connections{worker="1"}') === 192 && value(m, 'acceptor_worker_connections{worker="2"}') === 192;
    }, 20_000);
  } else {
    // ipc: Node sends one handle at a time per worker and the primary holds each of the others,
    // a descriptor apiece, until it is acknowledged. Hand-offs in flight are bounded by the
    // primary's budget, so in a burst the rest wait or, the queue full, are told busy, while slots
    // are still free: explicit, never a client closed with no answer (92 of 450 were, before).
    // Each send that ends lets a waiting connection go: the queue empties into the free slots
    // with no client closing.
    await until(async () => {
      m = await scrape(acc.metricsPort);
      const held = value(m, 'acceptor_worker_connections{worker="1"}')! + value(m, 'acceptor_worker_connections{worker="2"}')!;
      return value(m, 'acceptor_queue_depth') === 0 && held + value(m, 'acceptor_connections_rejected_total{reason="queue_full"}')! === 450;
    }, 20_000);
  }
  const busy = value(m, 'acceptor_connections_rejected_total{reason="queue_full"}')!;
  if (transport === 'fdpass') t.equal(busy, 0, 'none told busy: every one fits');
  writeFileSync(join(dir, 'release'), '');
  const answers = await Promise.all(clients.map((c) => c.response));
  t.same(tally(answers), busy ? { 200: 450 - busy, 503: busy } : { 200: 450 }, `each served or told busy (${busy} busy)`);
  m = await scrape(acc.metricsPort);
  t.same(['handoff_failed', 'accept_failed', 'worker_exit'].map((r) => value(m, `acceptor_connection_errors_total{reason="${r}"}`)), [0, 0, 0], 'nothing dropped');
});

// Refusals linger (the answer, then the request read until the client closes, 2 s at most), each
// holding a descriptor of the primary's. Clients that read "busy" and stay connected must not use
// up the descriptors the primary keeps for its own endpoints and for the answer itself.
t.test('out of descriptors for lingering refusals: every client still told busy; /healthz, /readyz and /metrics answer', { skip }, async (t) => {
  const dir = t.testdir();
  const acc = await start(['--workers', '2', '--max-connections', '10', '--backlog', '10', '--queue-timeout', '60s', '--handler', fixture('hold.mjs')], { wrap: ['prlimit', '--nofile=256:256'], env: { HOLD_FILE: join(dir, 'release') } });
  t.teardown(() => (process.kill(acc.proc.pid!, 'SIGCONT'), acc.stop('SIGKILL')));
  const before = await scrape(acc.metricsPort);
  // The 30 admitted first (20 in the workers' slots, 10 queued), then 400 more that stay
  // connected after their answer (half-open: they never close first).
  const admitted = Array.from({ length: 30 }, () => rawRequest(acc.port));
  await Promise.all(admitted.map((c) => c.connected));
  await until(async () => value(await scrape(acc.metricsPort), 'acceptor_queue_depth') === 10);
  const N = 400;
  const refused = Array.from({ length: N }, () => stayingClient(acc.port));
  const answers = await Promise.all(refused.map((c) => c.answer));
  t.same(tally(answers), { 503: N }, `all ${N} told busy`);
  // While they all still hold their connections: the primary's own endpoints answer.
  for (const path of ['/healthz', '/readyz', '/metrics']) t.equal((await get(acc.metricsPort, path)).status, path === '/readyz' ? 503 : 200, path);
  const m = await scrape(acc.metricsPort);
  const delta = (s: string): number => value(m, s)! - value(before, s)!;
  t.same([delta('acceptor_connections_rejected_total{reason="queue_full"}'), delta('acceptor_connection_errors_total{reason="accept_failed"}')], [N, 0], 'counted queue_full, none failed');
  for (const c of refused) c.socket.destroy();
  // A burst: the primary stopped while 300 connect, all waiting in the kernel's queue at once
  // when it runs again. Its accept batches stop short of the limit; each client is told busy.
  process.kill(acc.proc.pid!, 'SIGSTOP');
  const burst = Array.from({ length: 300 }, () => stayingClient(acc.port));
  await until(async () => (await listenQueueDepth(acc.port)) === 300);
  process.kill(acc.proc.pid!, 'SIGCONT');
  t.same(tally(await Promise.all(burst.map((c) => c.answer))), { 503: 300 }, 'a burst of 300: all told busy');
  for (const c of burst) c.socket.destroy();
  t.equal(await read(acc.metricsPort, 'acceptor_connection_errors_total{reason="accept_failed"}'), 0, 'no accept failed');
  writeFileSync(join(dir, 'release'), '');
  t.same(tally(await Promise.all(admitted.map((c) => c.response.then((r) => ({ status: r.status }))))), { 200: 30 }, 'the 30 admitted served');
});

const tally = (answers: { status: number }[]): Record<number, number> => answers.reduce<Record<number, number>>((o, a) => ((o[a.status] = (o[a.status] ?? 0) + 1), o), {});

/** Sends a request and reads the answer's status line, but never closes first (allowHalfOpen). */
function stayingClient(port: number): { socket: Socket; answer: Promise<{ status: number }> } {
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  socket.setEncoding('latin1');
  const answer = new Promise<{ status: number }>((resolve) => {
    let data = '';
    const done = (): void => resolve({ status: parseResponse(data).status });
    socket.on('data', (d: string) => {
      data += d;
      if (data.includes('\r\n\r\n')) done();
    });
    socket.on('error', done);
    socket.on('end', done);
  });
  socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  return { socket, answer };
}

// The app's own descriptors count too: here it holds 120 files, so the worker would run out before
// --max-connections. It counts what its descriptors can hold and the primary assigns no more (past
// the limit the kernel would drop hand-offs in transit, closing those clients with no answer):
// the rest wait in the queue or are told busy.
t.test("a worker whose app holds descriptors takes only what the rest can hold: the others wait or are told busy, none is dropped", { skip }, async (t) => {
  const dir = t.testdir();
  const acc = await start(['--workers', '1', '--transport', 'fdpass', '--max-connections', '192', '--queue-timeout', '60s', '--handler', fixture('hold-files.mjs')], { wrap: ['prlimit', '--nofile=256:256'], env: { HOLD_FILE: join(dir, 'release'), OPEN_FILES: '120' } });
  t.teardown(() => acc.stop('SIGKILL'));
  const N = 200;
  const clients = Array.from({ length: N }, () => rawRequest(acc.port));
  await Promise.all(clients.map((c) => c.connected));
  let m = await scrape(acc.metricsPort);
  await until(async () => {
    m = await scrape(acc.metricsPort);
    const held = value(m, 'acceptor_worker_connections{worker="1"}')! + value(m, 'acceptor_queue_depth')! + value(m, 'acceptor_connections_rejected_total{reason="queue_full"}')!;
    return held === N;
  });
  const inWorker = value(m, 'acceptor_worker_connections{worker="1"}')!;
  const busy = value(m, 'acceptor_connections_rejected_total{reason="queue_full"}')!;
  t.ok(inWorker < 256 - 120, `the worker stopped short of its limit: ${inWorker} connections beside 120 files`);
  t.equal(value(m, 'acceptor_queue_depth'), 95, 'the rest wait, as many as the (capped) backlog holds');
  t.match(acc.lines.filter((l) => /worker descriptors hold fewer connections/.test(String(l.msg))), [{ level: 40, worker: 1, limit: 256, maxConnections: 192, capacity: inWorker }], 'said once, with the capacity used');
  t.equal(value(m, 'acceptor_worker_capacity{worker="1"}'), inWorker, 'and shown');
  writeFileSync(join(dir, 'release'), '');
  const answers = await Promise.all(clients.map((c) => c.response));
  t.same(tally(answers), { 200: N - busy, 503: busy }, 'each served or told busy');
  m = await scrape(acc.metricsPort);
  t.equal(value(m, 'acceptor_connection_errors_total{reason="handoff_failed"}'), 0, 'no hand-off lost');
  t.equal((await get(acc.port, '/')).status, 200, 'it takes connections again once it has closed them');
});
