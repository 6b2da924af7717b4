// The acceptor's own queue, in process: bounded by its capacity, each connection with its age and
// its client; with one client (or --queue fifo) FIFO; with several, clients take turns; a full queue
// displaces the heaviest client's newest; hand-offs that never arrived go back to the very front;
// with sticky sessions, each slot's clients wait for that slot only. Memory follows what waits.
import t from 'tap';
import { WaitQueue, type Waiting } from '../../src/admission/queue.js';

const items = <T>(q: WaitQueue<T>, slot = 0): T[] => {
  const out: T[] = [];
  for (let w = q.shift(slot); w; w = q.shift(slot)) out.push(w.item);
  return out;
};
const brief = <T>(w: Waiting<T> | undefined): [T, number] | undefined => (w ? [w.item, w.at] : undefined);

t.test('one client: FIFO with each item’s age, bounded by capacity', async (t) => {
  const q = new WaitQueue<string>(3);
  t.equal(q.length, 0);
  t.equal(q.peek(), undefined, 'empty: nothing at the front');
  t.equal(q.shift(), undefined, 'empty: nothing to shift');
  t.equal(q.length, 0, 'still empty after shifting nothing');
  t.ok(q.push('a', 1));
  t.ok(q.push('b', 2));
  t.ok(q.push('c', 3));
  t.notOk(q.push('d', 4), 'full: the next is refused');
  t.equal(q.length, 3);
  t.same(brief(q.peek()), ['a', 1], 'peek shows the oldest');
  t.same(brief(q.shift()), ['a', 1]);
  t.equal(q.length, 2, 'one fewer after a shift');
  t.ok(q.push('d', 4), 'room again after a shift');
  t.notOk(q.push('e', 5), 'and full again');
  t.same(items(q), ['b', 'c', 'd']);
  t.equal(q.length, 0);
  t.equal(q.capacity, 3);
  t.equal(q.clientsWaiting, 0, 'no client left');
});

t.test('a failed hand-off goes back to the very front, keeping its age, even past capacity', async (t) => {
  const q = new WaitQueue<string>(2);
  q.push('a', 1);
  q.push('b', 2);
  const a = q.shift()!;
  q.push('c', 3);
  q.unshift(a);
  t.equal(q.length, 3, 'back in, past capacity: it was already accepted');
  t.same(brief(q.peek()), ['a', 1], 'at the front, with its age');
  t.notOk(q.push('d', 4), 'newcomers still refused');
  t.same(items(q), ['a', 'b', 'c']);
  // Several back in their order (the caller unshifts the last first), of different clients, ahead of the turns.
  const e = new WaitQueue<string>(10);
  e.push('x1', 1, 1);
  e.push('y1', 2, 2);
  e.push('x2', 3, 1);
  const back: Waiting<string>[] = [e.shift()!, e.shift()!];
  t.same(back.map((b) => b.item), ['x1', 'y1'], 'the clients took turns');
  for (let i = back.length - 1; i >= 0; i--) e.unshift(back[i]!);
  t.same(items(e), ['x1', 'y1', 'x2'], 'both back first, in their order, then the turns go on');
  const f = new WaitQueue<string>(10);
  f.push('z1', 1, 3);
  f.unshift({ item: 'x1', at: 0, key: 1 });
  f.unshift({ item: 'x0', at: 0, key: 1 });
  f.push('x9', 5, 1);
  t.same(items(f), ['x0', 'x1', 'z1', 'x9'], "two of one client's back at the front go before the next client's turn");
});

t.test('several clients take turns, each in its own order; a client new to the queue waits for the turns under way', async (t) => {
  const q = new WaitQueue<string>(100);
  for (const [item, key] of [['a1', 1], ['a2', 1], ['a3', 1], ['b1', 2], ['c1', 3]] as const) q.push(item, 0, key);
  t.equal(q.clientsWaiting, 3);
  t.same([q.waitingOf(1), q.waitingOf(2), q.waitingOf(3), q.waitingOf(4)], [3, 1, 1, 0]);
  t.equal(q.shift()!.item, 'a1', 'the first client first');
  q.push('d1', 0, 4);
  t.same(items(q), ['b1', 'c1', 'a2', 'd1', 'a3'], 'b, c and a had their turns coming before d arrived');
  // The same arrivals in arrival order, with --queue fifo.
  const f = new WaitQueue<string>(100, false);
  for (const [item, key] of [['a1', 1], ['a2', 1], ['a3', 1], ['b1', 2], ['c1', 3]] as const) f.push(item, 0, key);
  t.same(items(f), ['a1', 'a2', 'a3', 'b1', 'c1'], 'fifo: arrival order');
});

t.test('the oldest is at hand for the timeout, whoever’s turn it is', async (t) => {
  const q = new WaitQueue<string>(10);
  q.push('a1', 10, 1);
  q.push('b1', 20, 2);
  q.push('a2', 30, 1);
  t.equal(q.shift()!.item, 'a1');
  t.same(brief(q.peek()), ['b1', 20], 'b1 is the oldest now');
  t.same(brief(q.shiftOldest()), ['b1', 20]);
  t.same(brief(q.shiftOldest()), ['a2', 30]);
  t.equal(q.shiftOldest(), undefined);
  t.equal(q.length, 0);
});

t.test('full: a lighter client’s newcomer displaces the heaviest client’s newest waiting', async (t) => {
  const q = new WaitQueue<string>(4);
  for (const [item, key] of [['a1', 1], ['a2', 1], ['a3', 1], ['b1', 2]] as const) q.push(item, 0, key);
  t.notOk(q.push('c1', 0, 3), 'full');
  t.equal(q.displace(3)!.item, 'a3', "a (3 waiting) is heaviest: its newest gives way to c (none)");
  t.ok(q.push('c1', 0, 3));
  t.equal(q.displace(1), undefined, 'a (2) is as heavy as anyone now: not displaced for its own newcomer');
  t.equal(q.displace(2)!.item, 'a2', 'b (1) has fewer than a (2): a gives way again');
  q.push('b2', 0, 2);
  t.equal(q.displace(2), undefined, 'b (2) now the heaviest');
  t.same([q.waitingOf(1), q.waitingOf(2), q.waitingOf(3)], [1, 2, 1]);
  t.same(items(q), ['a1', 'b1', 'c1', 'b2']);
  const f = new WaitQueue<string>(2, false);
  f.push('a1', 0, 1);
  f.push('a2', 0, 1);
  t.equal(f.displace(2), undefined, 'fifo: never displaces');
});

t.test('sticky sessions: each slot’s clients wait for that slot only, taking turns there', async (t) => {
  const q = new WaitQueue<string>(10, true, (key) => (key % 2) + 1);
  for (const [item, key] of [['x1', 1], ['y1', 2], ['x2', 1], ['z1', 3], ['y2', 2]] as const) q.push(item, 0, key);
  t.same([q.waitingFor(1), q.waitingFor(2)], [2, 3]);
  t.same(items(q, 1), ['y1', 'y2'], 'slot 1: client 2 only');
  t.same(items(q, 2), ['x1', 'z1', 'x2'], 'slot 2: clients 1 and 3 in turn');
  const f = new WaitQueue<string>(10, false, (key) => (key % 2) + 1);
  for (const [item, key] of [['x1', 1], ['y1', 2], ['x2', 1], ['z1', 3]] as const) f.push(item, 0, key);
  t.same(items(f, 2), ['x1', 'x2', 'z1'], 'fifo with sticky sessions: the slot’s in arrival order');
  t.same(items(f, 1), ['y1']);
});

t.test('memory follows what waits: 100,000 distinct clients through the queue leave nothing behind', async (t) => {
  const q = new WaitQueue<number>(1000);
  const internals = q as unknown as { clients: Map<unknown, unknown>; turn: Map<unknown, unknown>; byCount: Map<unknown, unknown> };
  for (let i = 0; i < 100_000; i++) {
    q.push(i, i, i + 1);
    if (q.length === 1000) for (let j = 0; j < 500; j++) (j % 2 ? q.shift() : q.shiftOldest());
  }
  items(q);
  t.equal(q.length, 0);
  t.same([internals.clients.size, internals.turn.size, internals.byCount.size], [0, 0, 0], 'no client, no turn, no count kept');
});
