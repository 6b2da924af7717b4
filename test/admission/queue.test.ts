// The acceptor's own queue, in process: FIFO with ages, bounded by its capacity, failed hand-offs
// back at the front, and storage that stays bounded however long it runs.
import t from 'tap';
import { BoundedQueue, type Waiting } from '../../src/admission/queue.js';

/** The backing array's length: what the queue holds in memory, dead slots included. */
const storage = (q: BoundedQueue<unknown>): number => (q as unknown as { items: unknown[] }).items.length;
const drain = <T>(q: BoundedQueue<T>): T[] => {
  const out: T[] = [];
  for (let w = q.shift(); w; w = q.shift()) out.push(w.item);
  return out;
};

t.test('FIFO with each item’s age, bounded by capacity', async (t) => {
  const q = new BoundedQueue<string>(3);
  t.equal(q.length, 0);
  t.equal(q.peek(), undefined, 'empty: nothing at the front');
  t.equal(q.shift(), undefined, 'empty: nothing to shift');
  t.equal(q.length, 0, 'still empty after shifting nothing');
  t.ok(q.push('a', 1));
  t.ok(q.push('b', 2));
  t.ok(q.push('c', 3));
  t.notOk(q.push('d', 4), 'full: the next is refused');
  t.equal(q.length, 3);
  t.same(q.peek(), { item: 'a', at: 1 }, 'peek shows the oldest');
  t.same(q.shift(), { item: 'a', at: 1 });
  t.equal(q.length, 2, 'one fewer after a shift');
  t.ok(q.push('d', 4), 'room again after a shift');
  t.notOk(q.push('e', 5), 'and full again');
  t.same(drain(q), ['b', 'c', 'd']);
  t.equal(q.length, 0);
  t.equal(q.capacity, 3);
});

t.test('a failed hand-off goes back to the front, keeping its age, even past capacity', async (t) => {
  const q = new BoundedQueue<string>(2);
  q.push('a', 1);
  q.push('b', 2);
  const a = q.shift()!;
  q.push('c', 3);
  t.equal(q.length, 2, 'full again');
  q.unshift(a);
  t.equal(q.length, 3, 'back in, past capacity: it was already accepted');
  t.same(q.peek(), { item: 'a', at: 1 }, 'at the front, with its age');
  t.notOk(q.push('d', 4), 'newcomers still refused');
  t.same(drain(q), ['a', 'b', 'c']);

  // Into an empty queue, and several back in their order (the caller unshifts the last first).
  const e = new BoundedQueue<string>(5);
  e.unshift({ item: 'x', at: 9 });
  t.equal(e.length, 1);
  t.same(e.peek(), { item: 'x', at: 9 });
  e.push('y', 10);
  const back: Waiting<string>[] = [e.shift()!, e.shift()!];
  e.push('z', 11);
  for (let i = back.length - 1; i >= 0; i--) e.unshift(back[i]!);
  t.same(drain(e), ['x', 'y', 'z']);
});

t.test('order holds across compactions, and storage stays bounded by twice the length', async (t) => {
  const q = new BoundedQueue<number>(10_000);
  let pushed = 0;
  let shifted = 0;
  let maxStorage = 0;
  let maxLength = 0;
  let inOrder = true;
  // Waves that fill to different depths and drain partly, so the dead prefix grows and is dropped
  // with live items behind it, and some waves empty the queue.
  for (let wave = 0; wave < 200; wave++) {
    const fill = (wave * 37) % 3000;
    for (let i = 0; i < fill; i++) q.push(pushed++, pushed);
    const take = wave % 4 === 0 ? q.length : Math.floor(q.length * 0.7);
    for (let i = 0; i < take; i++) {
      if (q.shift()!.item !== shifted++) inOrder = false;
      maxStorage = Math.max(maxStorage, storage(q));
    }
    maxLength = Math.max(maxLength, q.length);
    if (wave % 10 === 5 && q.length > 0) {
      // A failed hand-off in the middle of a wave.
      const w = q.shift()!;
      q.unshift(w);
    }
  }
  t.ok(inOrder, 'every item came out in the order it went in');
  t.ok(maxStorage <= 2 * (maxLength + 3000), `storage peaked at ${maxStorage} for a length that peaked at ${maxLength}`);
  t.same(drain(q).length, pushed - shifted, 'the rest drain');
  t.equal(storage(q), 0, 'empty queue, empty storage');

  // A queue that never holds more than one item keeps no dead slots.
  const one = new BoundedQueue<number>(1);
  for (let i = 0; i < 10_000; i++) {
    one.push(i, i);
    one.shift();
  }
  t.equal(storage(one), 0);
});

t.test('dead slots are dropped once there are 1,024 and they are half the storage, not before', async (t) => {
  // A queue that never empties (steady load): without the drop its storage grows for ever.
  const steady = new BoundedQueue<number>(100);
  for (let i = 0; i < 10; i++) steady.push(i, i);
  let peak = 0;
  let inOrder = true;
  for (let i = 10; i < 100_000; i++) {
    steady.push(i, i);
    peak = Math.max(peak, storage(steady));
    if (steady.shift()!.item !== i - 10) inOrder = false;
  }
  t.ok(inOrder, 'in order throughout');
  t.equal(peak, 1023 + 11, 'never more than 1,023 dead slots beside the 11 live ones (the 1,024th drops them), over 100,000 shifts');

  // A long queue is not copied on every 1,024th shift: only once half of it is dead, so each
  // copy moves at most as many items as were shifted since the last (amortised O(1)).
  const long = new BoundedQueue<number>(5_000);
  for (let i = 0; i < 5_000; i++) long.push(i, i);
  for (let i = 0; i < 2_499; i++) long.shift();
  t.equal(storage(long), 5_000, '2,499 dead of 5,000: not copied yet');
  long.shift();
  t.equal(storage(long), 2_500, 'the 2,500th: copied, only the live half kept');
  t.same(long.peek(), { item: 2_500, at: 2_500 }, 'and the front is where it was');
});
