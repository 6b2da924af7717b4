// What each client holds in the workers (--max-connections-per-client): a connection counts from
// its hand-off until its worker tells its close by key, hands it back, or dies with it. An entry
// per client holding any, gone when it holds none: memory follows the clients connected now, not
// every client ever seen. Each worker keeps the same counts for itself, so that a worker's death
// releases exactly what it held.

/** Counts per client key, as kept by each worker record too. */
export type KeyCounts = Map<number, number>;

const add = (m: KeyCounts, key: number, n: number): void => void m.set(key, (m.get(key) ?? 0) + n);

/** Takes up to `n` from `key`'s count; the entry goes at 0. Returns what it took. */
function take(m: KeyCounts, key: number, n: number): number {
  const had = m.get(key);
  if (had === undefined) return 0;
  if (had > n) m.set(key, had - n);
  else m.delete(key);
  return Math.min(had, n);
}

export class ClientSlots {
  private readonly held: KeyCounts = new Map();

  hold(worker: { keys?: KeyCounts }, key: number): void {
    add(this.held, key, 1);
    add((worker.keys ??= new Map()), key, 1);
  }

  /** One of `key`'s connections on `worker` is gone (closed, handed back, or never delivered). */
  release(worker: { keys?: KeyCounts }, key: number): void {
    // Only what this worker held: a report that arrives after its death released it is ignored.
    if (worker.keys && take(worker.keys, key, 1) === 1) take(this.held, key, 1);
  }

  /** The worker has exited: what it still held is released. */
  releaseAll(worker: { keys?: KeyCounts }): void {
    for (const [key, n] of worker.keys ?? []) take(this.held, key, n);
    worker.keys = undefined;
  }

  heldBy(key: number): number {
    return this.held.get(key) ?? 0;
  }

  /** Clients holding connections now. */
  get clients(): number {
    return this.held.size;
  }

  keys(): IterableIterator<number> {
    return this.held.keys();
  }
}

/**
 * The worker slot (1..workers) a client's connections go to with sticky sessions: the highest of
 * a hash of (key, slot) over the slots (rendezvous hashing), so a slot keeps its clients however
 * its worker is replaced, and a change of --workers moves only the clients of the slots added or
 * removed.
 */
export function stickySlot(key: number, workers: number): number {
  const lo = key >>> 0;
  const hi = Math.floor(key / 4294967296) >>> 0;
  let best = 1;
  let bestHash = -1;
  for (let slot = 1; slot <= workers; slot++) {
    const h = mix(lo ^ mix(hi ^ Math.imul(slot, 0x9e3779b9)));
    if (h > bestHash) {
      best = slot;
      bestHash = h;
    }
  }
  return best;
}

/** A 32-bit integer hash (the finaliser of MurmurHash3). */
function mix(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}
