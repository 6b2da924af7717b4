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

function setup(): { dispatch: Handoff<string>; assigned: [number, string][]; refused: string[]; pool: { ready: WorkerRecord[]; responsive: number; detach: (w: WorkerRecord) => void }; w1: WorkerRecord; w2: WorkerRecord; back: Waiting<string>[]; moved: string[]; counters: Counters } {
  const rec = (slot: number): WorkerRecord => ({ slot, state: 'ready', active: 0, unsent: 0, capacity: Infinity }) as WorkerRecord;
  const w1 = rec(1);
  const w2 = rec(2);
  const assigned: [number, string][] = [];
  const refused: string[] = [];
  const back: Waiting<string>[] = [];
  const moved: string[] = [];
  const counters = new Counters();
  const transport: Transport<string> = {
    start: (_s: Server, _sink: Sink<string>) => {},
    assign: (w, c) => void assigned.push([w.slot, c]),
    flush: () => {},
    slotsWanted: () => {},
    refuse: (c) => void refused.push(c),
    prepareFork: () => undefined,
    movable: () => true,
    peer: () => undefined,
    detach: () => ({ back: back.splice(0), closed: 0, moved: moved.splice(0), movedLost: 0 }),
    stop: () => {},
  };
  const pool = { ready: [w1, w2], responsive: 2, detach: (w: WorkerRecord) => void (pool.ready = pool.ready.filter((r) => r !== w)) };
  const dispatch = new Handoff<string>({} as Server, pool as unknown as Pool, 2, 10, 60_000, counters, transport);
  t.teardown(() => dispatch.close());
  return { dispatch, assigned, refused, pool, w1, w2, back, moved, counters };
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

// A reload's drain (fdpass): connections the draining worker hands back free its slots and go to
// the next free slot ahead of everyone waiting, in the order handed back.
t.test('connections handed back go ahead of those waiting, in order; their slots leave the old worker', async (t) => {
  const { dispatch, assigned, pool, w1, w2, counters } = setup();
  for (const c of ['a', 'b', 'c', 'd', 'q1', 'q2']) dispatch.admit(c, 0);
  pool.ready = [w2];
  w1.state = 'draining';
  assigned.length = 0;
  dispatch.moved(w1, ['c', 'a'], 0);
  t.equal(w1.active, 0, "the old worker's two slots are free");
  t.equal(counters.migrated, 2);
  t.same(assigned, [], 'worker 2 is full: they wait');
  t.equal(dispatch.queue.length, 4);
  t.same([dispatch.queue.peek()!.item, dispatch.queue.peek()!.at], ['c', 0], 'at the head, as old as the oldest waiting (the one timeout holds for all)');
  dispatch.closed(w2, 1);
  t.same(assigned, [[2, 'c']], 'the first handed back first');
  dispatch.closed(w2, 3);
  t.same(assigned, [[2, 'c'], [2, 'a'], [2, 'q1'], [2, 'q2']], 'then the second, then those that were waiting');
});

t.test('handed back before the worker died: ahead of what it never received; a slot free takes them at once', async (t) => {
  const { dispatch, assigned, pool, w1, w2, back, moved, counters } = setup();
  for (const c of ['a', 'b', 'c', 'd']) dispatch.admit(c, 0);
  pool.ready = [w2];
  pool.responsive = 1;
  assigned.length = 0;
  dispatch.closed(w2, 2);
  // Worker 1 handed 'a' back and never read 'c'; 'a' is still in the channel when it dies.
  moved.push('a');
  back.push({ item: 'c', at: 3 });
  dispatch.onExit(w1);
  t.same(assigned, [[2, 'a'], [2, 'c']], 'both served on, the one handed back first');
  t.equal(counters.errors.worker_exit, 0, 'neither counted lost');
  t.equal(counters.migrated, 1);
  t.equal(w1.active, 0);
});

t.test('handed back during a shutdown: told busy (shutting_down), counted once', async (t) => {
  const { dispatch, refused, w1, counters } = setup();
  for (const c of ['a', 'b', 'c']) dispatch.admit(c, 0);
  t.equal(w1.active, 2, "'a' and 'c' on worker 1");
  dispatch.close();
  dispatch.moved(w1, ['a'], 1);
  t.same(refused, ['a']);
  t.equal(counters.rejected.shutting_down, 1);
  t.equal(counters.errors.handoff_failed, 1, 'one dropped in transit: counted');
  t.equal(w1.active, 0, 'both slots freed');
});
