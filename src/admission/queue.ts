// The acceptor's own queue of accepted connections waiting for a worker slot: FIFO, bounded
// by --backlog. O(1) push and shift (a head index, compacted now and then), no per-item timers.

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
    if (this.head >= this.items.length) return undefined;
    const w = this.items[this.head];
    this.items[this.head++] = undefined;
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
    if (this.head > 0) this.items[--this.head] = w;
    else this.items.unshift(w);
  }
}
