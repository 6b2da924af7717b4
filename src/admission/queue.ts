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
    // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, without this guard an empty queue writes one undefined slot and drops it at once, below
    if (this.head >= this.items.length) return undefined;
    const w = this.items[this.head];
    this.items[this.head++] = undefined;
    // Emptied (the common case under load that a queue absorbs): start over, no copy. Else drop
    // the dead prefix once it is long and half the storage: amortised O(1), storage bounded.
    // A queue of one or two would otherwise copy on nearly every shift (2.5× the cost per shift
    // when measured), on the path every waiting connection takes.
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return w;
  }

  /** Puts an item back at the front (a hand-off that failed keeps its place and its age). */
  unshift(w: Waiting<T>): void {
    // Stryker disable next-line ConditionalExpression: equivalent though slower, made `true` it stores at index -1, an array property that peek, shift and length then read as the front
    if (this.head > 0) this.items[--this.head] = w;
    else this.items.unshift(w);
  }
}
