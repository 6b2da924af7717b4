// The ipc transport's failure paths, through the dispatcher, in this process: a real listening
// socket, real clients and real child processes on Node's IPC channel; the pool is played by the
// test, so that a worker's death can come at a chosen moment. In a running acceptor each of these
// is a race of one event-loop turn around a worker's exit (a send failing before the exit is seen,
// or completing after it), which no test of a whole acceptor can make happen on purpose.
import t, { type Test } from 'tap';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer, type Server } from 'node:net';
import { Handoff } from '../../src/dispatch/handoff.js';
import { IpcTransport } from '../../src/dispatch/ipc.js';
import { busyPayload, makeRefuse } from '../../src/admission/busy.js';
import { Counters } from '../../src/metrics/counters.js';
import { clock } from '../../src/clock.js';
import type { Pool, WorkerRecord } from '../../src/primary/pool.js';
import { fixture, until } from '../helpers/cli.js';

/** What the dispatcher uses of the pool: the ready list, `responsive`, `detach`. */
class StandInPool {
  ready: WorkerRecord[] = [];
  detached: WorkerRecord[] = [];
  get responsive(): number {
    return this.ready.length;
  }
  detach(rec: WorkerRecord): void {
    this.detached.push(rec);
    this.ready = this.ready.filter((r) => r !== rec);
  }
  /** A worker's exit, in the order Pool.onExit reports it. */
  exit(rec: WorkerRecord, handoff: Handoff<unknown>): void {
    this.ready = this.ready.filter((r) => r !== rec);
    rec.gone = true;
    handoff.onExit(rec);
  }
}

async function peer(t: Test): Promise<ChildProcess> {
  const child = fork(fixture('ipc-peer.mjs'), { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  t.teardown(() => void child.kill('SIGKILL'));
  await once(child, 'message');
  return child;
}

/** A pool record for `child`, shaped as node:cluster's Worker is where the dispatcher reads it. */
const record = (slot: number, child: ChildProcess): WorkerRecord =>
  ({ slot, worker: { process: child, send: child.send.bind(child) }, state: 'ready', active: 0, unsent: 0, capacity: Infinity, startedAt: 0, readyAt: 1, lastBeat: 0, gone: false, candidate: false }) as unknown as WorkerRecord;

async function setup(t: Test, maxConnections = 4): Promise<{ server: Server; port: number; pool: StandInPool; counters: Counters; handoff: Handoff<unknown> }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => void server.close());
  const pool = new StandInPool();
  const counters = new Counters();
  const transport = new IpcTransport(makeRefuse(busyPayload('http', 1, '')));
  const handoff = new Handoff(server, pool as unknown as Pool, maxConnections, 8, 60_000, counters, transport as never);
  t.teardown(() => handoff.close());
  return { server, port: (server.address() as { port: number }).port, pool, counters, handoff };
}

/** The only ready worker, stopped (SIGSTOP): it reads nothing from its channel. */
async function stoppedWorker(t: Test, pool: StandInPool): Promise<{ child: ChildProcess; rec: WorkerRecord }> {
  const child = await peer(t);
  const rec = record(1, child);
  pool.ready = [rec];
  child.kill('SIGSTOP');
  return { child, rec };
}

/** A client that connects and collects what it is told until the server closes (at the latest, the test's end). */
function client(t: Test, port: number): { connected: Promise<unknown>; said: Promise<string> } {
  const s = connect({ port, host: '127.0.0.1' });
  t.teardown(() => void s.destroy());
  let data = '';
  s.setEncoding('latin1');
  s.on('data', (d: string) => (data += d));
  s.on('error', () => {});
  return { connected: once(s, 'connect'), said: once(s, 'close').then(() => data) };
}

t.test('a hand-off whose send fails (the channel closed before the exit is seen) goes back to the front, with its age, and its slot is freed', async (t) => {
  const { port, pool, handoff } = await setup(t);
  // Another worker's exit first: what the transport set up to collect that one's returns must
  // not swallow a later failure.
  pool.exit(record(3, await peer(t)), handoff);
  const broken = record(1, await peer(t));
  (broken.worker.process as ChildProcess).disconnect();
  pool.ready = [broken];
  const t0 = clock();
  const c = client(t, port);
  // The failed send detaches the worker (it gets nothing more) and requeues the connection.
  await until(() => handoff.queue.length === 1);
  t.same(pool.detached, [broken], 'the worker is detached: nothing more is sent to it');
  t.equal(broken.active, 0, 'its slot is freed');
  t.ok(handoff.queue.peek()!.at >= t0 && handoff.queue.peek()!.at <= clock(), 'it keeps its accept time');
  // A worker that can take it: served, the oldest first.
  const good = await peer(t);
  pool.ready = [record(2, good)];
  handoff.onReady();
  t.equal(await c.said, `served by ${good.pid}\n`, 'it reaches the next worker, whole');
  t.equal(handoff.queue.length, 0);
});

t.test('a worker that dies while the acceptor drains: the hand-offs it never received are told busy (shutting_down), the one it had is counted lost', async (t) => {
  const { port, pool, counters, handoff } = await setup(t);
  // The first hand-off is written to its channel and never acknowledged, so Node queues the
  // next two behind it.
  const { child, rec } = await stoppedWorker(t, pool);
  const clients = [client(t, port), client(t, port), client(t, port)];
  for (const c of clients) await c.connected;
  await until(() => rec.active === 3 && rec.unsent === 2);
  handoff.close();
  pool.exit(rec, handoff);
  t.equal(counters.rejected.shutting_down, 2, 'the two it never received: shutting_down');
  t.equal(counters.errors.worker_exit, 1, 'the one written to it: lost with it, counted once');
  t.equal(handoff.queue.length, 0, 'nothing is queued while closing');
  const told = await Promise.all([clients[1]!.said, clients[2]!.said]);
  for (const s of told) t.match(s, /^HTTP\/1\.1 503 /, 'told busy');
  child.kill('SIGKILL');
  t.equal(await clients[0]!.said, '', 'the lost one is closed with the worker');
});

t.test('a hand-off still being written when its worker dies (its channel full) is counted lost once, when the write ends', async (t) => {
  // Node reports an asynchronous write as sent however it ends, so a hand-off whose write was
  // still queued at the worker's exit completes, "sent", after the worker was counted out.
  const { port, pool, counters, handoff } = await setup(t);
  const { child, rec } = await stoppedWorker(t, pool);
  // More than the kernel buffers for the stopped reader: the hand-off's write waits behind it.
  child.send('x'.repeat(4 << 20));
  const c = client(t, port);
  await until(() => rec.active === 1);
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(rec.unsent, 1, 'its write is pending');
  pool.exit(rec, handoff);
  t.equal(counters.errors.worker_exit, 0, 'not counted at the exit: its send has not ended');
  child.kill('SIGKILL');
  await until(() => rec.unsent === 0);
  t.equal(counters.errors.worker_exit, 1, 'counted once, when the write ends');
  t.equal(handoff.queue.length, 0);
  t.equal(await c.said, '', 'the client is closed, not left hanging');
});
