// The dispatcher's order promises, in process with a stand-in pool and transport: what a worker
// never received goes back to the front of the queue in the order it was admitted, ahead of those
// already waiting; then the queue drains oldest first. (Queue timeouts: handoff.test.ts.)
import t from 'tap';
import type { Server } from 'node:net';
import { Handoff } from '../../src/dispatch/handoff.js';
import { Counters } from '../../src/metrics/counters.js';
import type { Pool, WorkerRecord } from '../../src/primary/pool.js';
import type { Sink, Transport } from '../../src/dispatch/transport.js';
import type { Waiting } from '../../src/admission/queue.js';

function setup(): { dispatch: Handoff<string>; assigned: [number, string][]; refused: string[]; pool: { ready: WorkerRecord[]; responsive: number; detach: (w: WorkerRecord) => void }; w1: WorkerRecord; w2: WorkerRecord; back: Waiting<string>[] } {
  const rec = (slot: number): WorkerRecord => ({ slot, state: 'ready', active: 0, unsent: 0, capacity: Infinity }) as WorkerRecord;
  const w1 = rec(1);
  const w2 = rec(2);
  const assigned: [number, string][] = [];
  const refused: string[] = [];
  const back: Waiting<string>[] = [];
  const transport: Transport<string> = {
    start: (_s: Server, _sink: Sink<string>) => {},
    assign: (w, c) => void assigned.push([w.slot, c]),
    flush: () => {},
    slotsWanted: () => {},
    refuse: (c) => void refused.push(c),
    prepareFork: () => undefined,
    detach: () => ({ back: back.splice(0), closed: 0 }),
    stop: () => {},
  };
  const pool = { ready: [w1, w2], responsive: 2, detach: (w: WorkerRecord) => void (pool.ready = pool.ready.filter((r) => r !== w)) };
  const dispatch = new Handoff<string>({} as Server, pool as unknown as Pool, 2, 10, 60_000, new Counters(), transport);
  t.teardown(() => dispatch.close());
  return { dispatch, assigned, refused, pool, w1, w2, back };
}

t.test("a dead worker's unread hand-offs go to the front, in admission order, ahead of those waiting", async (t) => {
  const { dispatch, assigned, pool, w1, w2, back } = setup();
  for (const c of ['a', 'b', 'c', 'd', 'q1', 'q2']) dispatch.admit(c, 0);
  t.same(assigned, [[1, 'a'], [2, 'b'], [1, 'c'], [2, 'd']], 'the slots, round the workers; q1 and q2 wait');
  // Worker 1 dies having read neither of its two.
  back.push({ item: 'a', at: 1 }, { item: 'c', at: 3 });
  pool.ready = [w2];
  pool.responsive = 1;
  assigned.length = 0;
  dispatch.onExit(w1);
  t.same(assigned, [], 'worker 2 is full: all four wait');
  t.equal(dispatch.queue.length, 4);
  dispatch.closed(w2, 2);
  t.same(assigned, [[2, 'a'], [2, 'c']], 'the reclaimed ones first, oldest first');
  dispatch.closed(w2, 2);
  t.same(assigned, [[2, 'a'], [2, 'c'], [2, 'q1'], [2, 'q2']], 'then those that were waiting, in order');
});

t.test('hand-offs a worker never received (a failed send) go back the same way', async (t) => {
  const { dispatch, assigned, pool, w1, w2 } = setup();
  for (const c of ['a', 'b', 'c', 'd', 'q1']) dispatch.admit(c, 0);
  assigned.length = 0;
  dispatch.undelivered(w1, [{ item: 'a', at: 1 }, { item: 'c', at: 3 }]);
  t.same(pool.ready, [w2], 'the worker whose sends failed gets nothing more');
  dispatch.closed(w2, 2);
  dispatch.closed(w2, 1);
  t.same(assigned, [[2, 'a'], [2, 'c'], [2, 'q1']]);
});
