// The workers' counters as the primary keeps them: never lower across a worker's replacement, what
// a worker counted kept in its slot after it is gone, a late message after its exit counted once.
import t from 'tap';
import { WorkerTotals, snapshot } from '../../src/metrics/totals.js';
import { Counters } from '../../src/metrics/counters.js';

const counts = (handled: number, badRequests: number): number[] => {
  const c = new Counters();
  c.errors.bad_request = badRequests;
  return snapshot(c, handled);
};

t.test('a replaced worker: its counts stay in its slot, the new one adds to them', async (t) => {
  const w = new WorkerTotals();
  const a = { slot: 1 };
  const b = { slot: 2 };
  w.update(a, counts(5, 3));
  w.update(b, counts(7, 0));
  t.same([w.handled(1), w.handled(2), w.errors('bad_request'), w.accepted()], [5, 7, 3, 0]);
  w.update(a, counts(6, 3));
  t.same([w.handled(1), w.errors('bad_request')], [6, 3], 'a newer snapshot: only what is new is added');
  // `a` is gone; its successor in slot 1 starts from zero.
  const a2 = { slot: 1 };
  w.update(a2, counts(2, 1));
  t.same([w.handled(1), w.handled(2), w.errors('bad_request')], [8, 7, 4], 'its successor adds to the slot');
  w.update(a2, counts(2, 1));
  t.same([w.handled(1), w.errors('bad_request')], [8, 4], 'the same snapshot again adds nothing');
});

t.test("a message that arrives after the worker's exit adds only what is new", async (t) => {
  const w = new WorkerTotals();
  const a = { slot: 1 };
  w.update(a, counts(5, 1));
  w.update(a, counts(6, 1));
  t.same([w.handled(1), w.errors('bad_request')], [6, 1]);
  const late = { slot: 1 };
  w.update(late, counts(2, 0));
  t.equal(w.handled(1), 8, 'a worker first heard of after its exit: all of it');
});

t.test('never lower: an older snapshot does not lower what was seen; a malformed one is ignored', async (t) => {
  const w = new WorkerTotals();
  const a = { slot: 1 };
  w.update(a, counts(5, 2));
  w.update(a, counts(4, 1));
  t.same([w.handled(1), w.errors('bad_request')], [5, 2]);
  w.update(a, [9, 9, 9]);
  t.same([w.handled(1), w.errors('bad_request')], [5, 2], 'too short: ignored');
  w.update(a, [...counts(7, 2), 1]);
  t.same([w.handled(1), w.errors('bad_request')], [5, 2], 'too long: ignored');
  w.update({ slot: 2 }, [3]);
  t.equal(w.handled(2), 0, "a new worker's malformed first snapshot: ignored");
  w.update(a, counts(7, 2));
  t.same([w.handled(1), w.errors('bad_request')], [7, 2], 'and the next good one counts from the last good one');
});
