// The workers' counters as the primary keeps them: never lower across a worker's replacement, a
// retired worker's counts kept in its slot, a late message after its exit counted once.
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
  const a = { slot: 1, gone: false };
  const b = { slot: 2, gone: false };
  w.update(a, counts(5, 3));
  w.update(b, counts(7, 0));
  t.same([w.handled(1), w.handled(2), w.errors('bad_request')], [5, 7, 3]);
  a.gone = true;
  w.retire(a);
  t.same([w.handled(1), w.errors('bad_request')], [5, 3], 'kept after it is gone');
  const a2 = { slot: 1, gone: false };
  w.update(a2, counts(2, 1));
  t.same([w.handled(1), w.handled(2), w.errors('bad_request')], [7, 7, 4], 'its successor adds to the slot');
  w.retire(a);
  t.same([w.handled(1), w.errors('bad_request')], [7, 4], 'retired once only');
});

t.test("a message that arrives after the worker's exit adds only what is new", async (t) => {
  const w = new WorkerTotals();
  const a = { slot: 1, gone: false };
  w.update(a, counts(5, 1));
  a.gone = true;
  w.retire(a);
  w.update(a, counts(6, 1));
  t.same([w.handled(1), w.errors('bad_request')], [6, 1]);
  const late = { slot: 1, gone: true };
  w.update(late, counts(2, 0));
  t.equal(w.handled(1), 8, "a worker gone before its first message: all of it");
});

t.test('never lower: an older snapshot does not lower what was seen; a malformed one is ignored', async (t) => {
  const w = new WorkerTotals();
  const a = { slot: 1, gone: false };
  w.update(a, counts(5, 2));
  w.update(a, counts(4, 1));
  t.same([w.handled(1), w.errors('bad_request')], [5, 2]);
  w.update(a, [1, 2, 3]);
  t.equal(w.handled(1), 5);
});
