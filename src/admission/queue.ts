// The acceptor's own queue of accepted connections waiting for a worker slot, bounded by
// --backlog, with no per-item timers. Each connection carries its client's key
// (admission/client.ts), and each client's connections wait in a FIFO of their own. In the fair
// order (the default) clients take turns as slots free up (round robin), so one client's thousand
// waiting connections delay another's first by one turn, not by a thousand; and when the queue is
// full, a newcomer whose client has fewer waiting than the heaviest client takes the place of that
// client's newest waiting connection (displace()). With one client this is exactly FIFO, as is
// --queue fifo. With sticky sessions each worker slot has its own turn of clients (a client's
// connections all go to one slot). Every connection is also on one list in arrival order, so the
// oldest (the one the one timeout reaches first) is always at hand. Hand-offs that never arrived,
// and connections handed back, go to the very front even past capacity: they were admitted long
// ago. Every operation is O(1) (amortised for the heaviest client), but a FIFO with sticky sessions
// looks for its slot's oldest in arrival order.

export interface Waiting<T> {
  item: T;
  /** performance.timeOrigin + performance.now() at accept, in ms. */
  at: number;
  /** The client key (0: none known). */
  key?: number;
}

interface Node<T> extends Waiting<T> {
  key: number;
  client: Client<T>;
  /** Put back at the front (unshift): its client keeps the turn while such remain. */
  front: boolean;
  /** Arrival order (all nodes). */
  prev: Node<T> | undefined;
  next: Node<T> | undefined;
  /** The client's own FIFO. */
  cprev: Node<T> | undefined;
  cnext: Node<T> | undefined;
}

interface Client<T> {
  key: number;
  slot: number;
  head: Node<T> | undefined;
  tail: Node<T> | undefined;
  count: number;
  /** The slot's turn of clients with connections waiting (a ring). */
  rprev: Client<T> | undefined;
  rnext: Client<T> | undefined;
}

export class WaitQueue<T> {
  private first: Node<T> | undefined;
  private last: Node<T> | undefined;
  private n = 0;
  private readonly clients = new Map<number, Client<T>>();
  /** Per slot (0 without sticky sessions): the client whose turn is next. */
  private readonly turn = new Map<number, Client<T>>();
  private readonly waitingPerSlot = new Map<number, number>();
  /** Clients by how many they have waiting, for displace(): the heaviest is at `most`. */
  private readonly byCount = new Map<number, Set<Client<T>>>();
  private most = 0;

  /**
   * `fair` false: plain FIFO order (--queue fifo), displace() never displaces. `slotOf`: the slot
   * a client's connections wait for (sticky sessions), else every client waits for any (0).
   */
  constructor(
    readonly capacity: number,
    private readonly fair = true,
    private readonly slotOf: (key: number) => number = () => 0,
  ) {}

  get length(): number {
    return this.n;
  }

  /** Connections of this client waiting now. */
  waitingOf(key: number): number {
    return this.clients.get(key)?.count ?? 0;
  }

  /** Connections waiting for this slot (sticky), or for any (slot 0). */
  waitingFor(slot: number): number {
    return this.waitingPerSlot.get(slot) ?? 0;
  }

  /** Clients with connections waiting. */
  get clientsWaiting(): number {
    return this.clients.size;
  }

  /** False when full: the caller displaces, or refuses the connection. */
  push(item: T, at: number, key = 0): boolean {
    if (this.n >= this.capacity) return false;
    const node = this.node(item, at, key);
    this.linkLast(node);
    const c = node.client;
    if (c.tail) {
      c.tail.cnext = node;
      node.cprev = c.tail;
    } else {
      c.head = node;
    }
    c.tail = node;
    this.counted(c, +1);
    // A client that had nothing waiting takes its turn after those already waiting.
    if (c.count === 1) this.joinTurn(c, false);
    return true;
  }

  /** Puts a connection back at the very front (a hand-off that never arrived, or one handed back): next to go, whatever the turns. */
  unshift(w: Waiting<T>): void {
    const node = this.node(w.item, w.at, w.key ?? 0);
    node.front = true;
    node.next = this.first;
    if (this.first) this.first.prev = node;
    else this.last = node;
    this.first = node;
    this.n++;
    const c = node.client;
    node.cnext = c.head;
    if (c.head) c.head.cprev = node;
    else c.tail = node;
    c.head = node;
    this.counted(c, +1);
    this.leaveTurn(c);
    this.joinTurn(c, true);
  }

  /** The oldest connection waiting: the one a timeout reaches first. */
  peek(): Waiting<T> | undefined {
    return this.first;
  }

  /** Removes and returns the oldest (for the timeout sweep). */
  shiftOldest(): Waiting<T> | undefined {
    const node = this.first;
    if (node) this.remove(node);
    return node;
  }

  /** The next connection to hand to a free slot of `slot` (0: any worker). */
  shift(slot = 0): Waiting<T> | undefined {
    let node: Node<T> | undefined;
    if (this.fair) node = this.turn.get(slot)?.head;
    else for (node = this.first; node && node.client.slot !== slot; node = node.next); // O(n) only with sticky sessions
    if (!node) return undefined;
    const c = node.client;
    this.remove(node);
    // Its turn is over: the next client's comes, whether or not it has more waiting (unless more
    // of its connections were put back at the front: those go first).
    if (this.fair && c.count > 0 && this.turn.get(slot) === c && !c.head!.front) this.turn.set(slot, c.rnext!);
    return node;
  }

  /**
   * The queue is full and a connection of client `key` arrives: if that client has fewer waiting
   * than the heaviest client, removes and returns the heaviest client's newest waiting connection
   * (its place goes to the newcomer); else undefined (the newcomer is refused).
   */
  displace(key: number): Waiting<T> | undefined {
    if (!this.fair || this.waitingOf(key) >= this.most) return undefined;
    const heaviest = this.byCount.get(this.most)!.values().next().value as Client<T>;
    const node = heaviest.tail!;
    this.remove(node);
    return node;
  }

  private node(item: T, at: number, key: number): Node<T> {
    let c = this.clients.get(key);
    if (!c) {
      c = { key, slot: this.slotOf(key), head: undefined, tail: undefined, count: 0, rprev: undefined, rnext: undefined };
      this.clients.set(key, c);
    }
    return { item, at, key, client: c, front: false, prev: undefined, next: undefined, cprev: undefined, cnext: undefined };
  }

  private linkLast(node: Node<T>): void {
    node.prev = this.last;
    if (this.last) this.last.next = node;
    else this.first = node;
    this.last = node;
    this.n++;
  }

  private remove(node: Node<T>): void {
    if (node.prev) node.prev.next = node.next;
    else this.first = node.next;
    if (node.next) node.next.prev = node.prev;
    else this.last = node.prev;
    this.n--;
    const c = node.client;
    if (node.cprev) node.cprev.cnext = node.cnext;
    else c.head = node.cnext;
    if (node.cnext) node.cnext.cprev = node.cprev;
    else c.tail = node.cprev;
    node.prev = node.next = node.cprev = node.cnext = undefined;
    this.counted(c, -1);
    if (c.count === 0) {
      this.leaveTurn(c);
      this.clients.delete(c.key);
    }
  }

  private counted(c: Client<T>, d: 1 | -1): void {
    if (c.count > 0) this.byCount.get(c.count)!.delete(c);
    c.count += d;
    this.waitingPerSlot.set(c.slot, (this.waitingPerSlot.get(c.slot) ?? 0) + d);
    if (c.count > 0) {
      let set = this.byCount.get(c.count);
      if (!set) this.byCount.set(c.count, (set = new Set()));
      set.add(c);
      if (c.count > this.most) this.most = c.count;
    }
    while (this.most > 0 && !this.byCount.get(this.most)?.size) this.byCount.delete(this.most--);
  }

  /** Into its slot's ring: next in turn (`first`), or last (just before the one whose turn is next). */
  private joinTurn(c: Client<T>, first: boolean): void {
    const next = this.turn.get(c.slot);
    if (!next) {
      c.rprev = c.rnext = c;
      this.turn.set(c.slot, c);
      return;
    }
    c.rnext = next;
    c.rprev = next.rprev;
    next.rprev!.rnext = c;
    next.rprev = c;
    if (first) this.turn.set(c.slot, c);
  }

  private leaveTurn(c: Client<T>): void {
    if (!c.rnext) return;
    if (c.rnext === c) this.turn.delete(c.slot);
    else {
      c.rprev!.rnext = c.rnext;
      c.rnext.rprev = c.rprev;
      if (this.turn.get(c.slot) === c) this.turn.set(c.slot, c.rnext);
    }
    c.rprev = c.rnext = undefined;
  }
}
