// The acceptor's own queue of accepted connections waiting for a worker slot: FIFO, bounded
// by --backlog. O(1) push and shift (a head index, compacted now and then), no per-item timers.
// A failed hand-off puts connections back at the front even past capacity: they were already
// accepted, and keep their place.

export interface Waiting<T> {
  item: T;
  /** performance.timeOrigin + performance.now() at accept, in ms. */
  at: number;
}

export class BoundedQueue<T> {
  private items: (Waiting<T> | undefined)[] = [];
  private head = 0;

  constructor(readonly capacity: number) {}

  get length(): number {
    return this.items.length - this.head;
  }

  /** False when full: the caller refuses the connection. */
  push(item: T, at: number): boolean {
    if (this.length >= this.capacity) return false;
    this.items.push({ item, at });
    return true;
  }

  peek(): Waiting<T> | undefined {
    return this.items[this.head];
  }

  shift(): Waiting<T> | undefined {
    // (Mutation testing: with this guard made false, shifting an empty queue writes one undefined
    // slot that the compaction below drops at once, so that mutant survives: it is equivalent.)
    if (this.head === this.items.length) return undefined;
    const w = this.items[this.head];
    this.items[this.head++] = undefined;
    // Drop the dead prefix once it is half the storage: each item is copied at most once per
    // shift that preceded it (amortised O(1)), and storage stays under twice the length.
    // (Mutants that compact on every shift, or only past half, change the cost, not the order or
    // the bound, and survive: equivalent. Never compacting is caught by the storage bound test.)
    if (this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return w;
  }

  /** Puts an item back at the front (a hand-off that failed keeps its place and its age). */
  unshift(w: Waiting<T>): void {
    // (Made `true`, this stores at index -1, an array property that peek, shift and length then
    // read as the front: a surviving mutant, equivalent in behaviour though slower.)
    if (this.head > 0) this.items[--this.head] = w;
    else this.items.unshift(w);
  }
}
