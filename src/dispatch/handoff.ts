// The default strategy. The primary accepts every connection itself, unread, and either hands it
// to the least-loaded ready worker with a free slot, or queues it (at most --backlog; clients take
// turns, admission/queue.ts), or tells it busy. Admission is exact because the primary alone
// counts the slots: a slot is taken when a connection is assigned and freed when the worker
// reports it closed. Per client likewise (--max-connections-per-client): what each holds is
// counted from its hand-off to its close. The transport only carries what was decided here.
import type { Server } from 'node:net';
import { WaitQueue, type Waiting } from '../admission/queue.js';
import { ClientSlots, stickySlot } from '../admission/clients.js';
import { clock } from '../clock.js';
import type { RejectReason } from '../admission/busy.js';
import type { Counters } from '../metrics/counters.js';
import type { Workers, WorkerRecord } from './workers.js';
import type { Sink, Transport } from './transport.js';

/** Per-client admission (options.ts says what each means). Off: one client, FIFO, any worker. */
export interface ClientRules {
  fair: boolean;
  /** 0: no limit. */
  maxPerClient: number;
  /** Sticky sessions over this many worker slots; 0: off. */
  stickySlots: number;
  /** A connection refused `client_limit` (for the log, which names the client). */
  onLimited?: (conn: unknown, key: number, holds: number) => void;
}

const NO_RULES: ClientRules = { fair: false, maxPerClient: 0, stickySlots: 0 };

export class Handoff<C> implements Sink<C> {
  readonly queue: WaitQueue<C>;
  /** What each client holds (--max-connections-per-client), else undefined. */
  readonly clients: ClientSlots | undefined;
  private closing = false;
  private next = 0;
  private sweeper: NodeJS.Timeout | undefined;
  private readonly slotOf: (key: number) => number;

  constructor(
    server: Server,
    private readonly pool: Workers,
    private readonly maxConnections: number,
    backlog: number,
    private readonly queueTimeout: number,
    private readonly counters: Counters,
    readonly transport: Transport<C>,
    /**
     * Hand-offs in flight to one worker at most (ipc: Node sends one handle at a time and holds the
     * rest, each a descriptor of the primary's, until the worker acknowledges it). Past it
     * connections wait in the queue, within the descriptor budget. fdpass sends at once: 0 in flight.
     */
    private readonly maxInFlight = Number.MAX_SAFE_INTEGER,
    private readonly rules: ClientRules = NO_RULES,
  ) {
    const n = rules.stickySlots;
    this.slotOf = n > 0 ? (key) => stickySlot(key, n) : () => 0;
    this.queue = new WaitQueue(backlog, rules.fair, this.slotOf);
    this.clients = rules.maxPerClient > 0 ? new ClientSlots() : undefined;
    transport.start(server, this);
  }

  admit(conn: C, at: number, key = 0): void {
    this.counters.accepted++;
    if (this.closing) return this.reject(conn, 'shutting_down');
    if (this.clients) {
      const holds = this.clients.heldBy(key) + this.queue.waitingOf(key);
      if (holds >= this.rules.maxPerClient) {
        this.rules.onLimited?.(conn, key, holds);
        return this.reject(conn, 'client_limit');
      }
    }
    const slot = this.slotOf(key);
    // Oldest first: while anyone waits (for this slot), a newcomer queues behind them. (The length
    // first: the common case, nobody waiting, then costs no lookup.)
    // Stryker disable next-line ConditionalExpression,LogicalOperator: equivalent, anyone waits only while no slot is free (every freed slot drains the queue at once), so pick() finds nothing anyway
    if (this.queue.length === 0 || this.queue.waitingFor(slot) === 0) {
      const w = this.pick(slot);
      if (w) return this.assign(w, conn, at, key);
    }
    if (this.pool.responsive === 0) return this.reject(conn, 'no_worker');
    if (!this.queue.push(conn, at, key)) {
      // Full: the heaviest client's newest waiting gives its place to a lighter client's newcomer.
      const out = this.queue.displace(key);
      if (!out) return this.reject(conn, 'queue_full');
      this.reject(out.item, 'displaced');
      this.queue.push(conn, at, key);
    }
    this.armSweeper();
  }

  batchDone(): void {
    this.sendAssigned();
  }

  /** Every close told so far is counted (a scrape of per-client counts reads them first). */
  settle(): void {
    this.transport.settle?.();
  }

  /** Sends what was assigned; whether freed slots must now be heard at once follows the queue. */
  private sendAssigned(): void {
    this.transport.flush();
    // (Always `true`, close reports wake the primary even with nobody waiting: more wake-ups, the
    // same admissions. Surviving mutants, equivalent in behaviour; the cost is the bench's.)
    this.transport.slotsWanted(this.queue.length > 0);
  }

  acceptFailed(n: number): void {
    this.counters.errors.accept_failed += n;
  }

  lost(n: number): void {
    this.counters.errors.worker_exit += n;
  }

  sent(): void {
    if (this.queue.length > 0) this.drain();
  }

  private reject(conn: C, reason: RejectReason): void {
    this.counters.rejected[reason]++;
    this.transport.refuse(conn);
  }

  private free(w: WorkerRecord): boolean {
    return w.active < this.maxConnections && w.active < w.capacity && w.unsent < this.maxInFlight;
  }

  /**
   * Least-loaded ready worker with a free slot; ties go round the slots in turn. With sticky
   * sessions (`slot` > 0), that slot's ready worker if it has a free slot, and none else.
   */
  private pick(slot = 0): WorkerRecord | undefined {
    const ready = this.pool.ready;
    if (slot > 0) {
      for (const w of ready) if (w.slot === slot) return this.free(w) ? w : undefined;
      return undefined;
    }
    const n = ready.length;
    let best: WorkerRecord | undefined;
    for (let i = 0; i < n; i++) {
      const w = ready[(this.next + i) % n]!;
      if (this.free(w) && (best === undefined || w.active < best.active)) best = w;
    }
    if (best) this.next = (ready.indexOf(best) + 1) % n;
    return best;
  }

  private assign(w: WorkerRecord, conn: C, at: number, key: number): void {
    w.active++;
    this.clients?.hold(w, key);
    this.transport.assign(w, conn, at, key);
  }

  undelivered(w: WorkerRecord, back: Waiting<C>[]): void {
    // The worker gets nothing more: picked again before its exit is processed, it would fail
    // again on every tick.
    this.pool.detach(w);
    w.active -= back.length;
    if (this.clients) for (const b of back) this.clients.release(w, b.key ?? 0);
    this.requeue(back);
    this.drain();
  }

  moved(w: WorkerRecord, conns: C[], lost: number, keys?: ArrayLike<number>): void {
    w.active -= conns.length + lost;
    if (this.clients && keys) for (let i = 0; i < conns.length; i++) this.clients.release(w, keys[i]!);
    this.rehome(conns, lost, keys);
    this.drain();
  }

  /**
   * Connections a draining worker handed back go to the next free slot, ahead of everyone
   * waiting: each was admitted long ago, and its client may be sending already (the kernel holds
   * those bytes for the next worker). No slot free: they wait at the queue's head, as old as the
   * oldest one waiting (the queue stays in age order, so its one timeout still holds for all).
   */
  private rehome(conns: C[], lost: number, keys?: ArrayLike<number>): void {
    this.counters.migrated += conns.length;
    this.counters.errors.handoff_failed += lost;
    if (this.closing) {
      for (const c of conns) this.reject(c, 'shutting_down');
      return;
    }
    const at = Math.min(clock(), this.queue.peek()?.at ?? Infinity);
    for (let i = conns.length - 1; i >= 0; i--) this.queue.unshift({ item: conns[i]!, at, key: keys?.[i] ?? 0 });
    this.armSweeper();
  }

  /** Connections that never reached their worker keep their place (the front) and their age. */
  private requeue(back: Waiting<C>[]): void {
    if (this.closing) {
      for (const b of back) this.reject(b.item, 'shutting_down');
      return;
    }
    for (let i = back.length - 1; i >= 0; i--) this.queue.unshift(back[i]!);
    this.armSweeper();
  }

  /** Hands queued connections to free slots: at the front first, then clients in turn (or oldest first). */
  drain(): void {
    if (this.rules.stickySlots > 0) {
      // Each slot's worker takes its own clients' connections.
      for (const w of this.pool.ready) {
        while (this.queue.waitingFor(w.slot) > 0 && this.free(w)) {
          const q = this.queue.shift(w.slot)!;
          this.assign(w, q.item, q.at, q.key ?? 0);
        }
      }
    } else {
      while (this.queue.length > 0) {
        const w = this.pick();
        if (!w) break;
        const q = this.queue.shift()!;
        this.assign(w, q.item, q.at, q.key ?? 0);
      }
    }
    this.sendAssigned();
  }

  closed(w: WorkerRecord, n: number, keys?: ArrayLike<number>): void {
    w.active -= n;
    if (this.clients && keys) for (let i = 0; i < keys.length; i++) this.clients.release(w, keys[i]!);
    this.drain();
  }

  onReady(): void {
    this.drain();
  }

  /**
   * A worker exited. What the transport gets back from it is handed on; what it held is lost
   * with it: counted, and the slots freed. ipc sends still in progress are counted when they
   * complete (lost) or fail (handed on), so the counter only ever rises.
   */
  onExit(w: WorkerRecord): void {
    const { back, closed, closedKeys, moved, movedKeys, movedLost } = this.transport.detach(w);
    w.active -= closed + back.length + moved.length + movedLost;
    // Cut at the end of the drain's time (a WebSocket the app did not close), or lost in a death.
    this.counters.errors[w.drainTimedOut ? 'drain_timeout' : 'worker_exit'] += w.active - w.unsent;
    w.active = 0;
    if (this.clients) {
      for (let i = 0; i < (closedKeys?.length ?? 0); i++) this.clients.release(w, closedKeys![i]!);
      for (const b of back) this.clients.release(w, b.key ?? 0);
      for (let i = 0; i < (movedKeys?.length ?? 0); i++) this.clients.release(w, movedKeys![i]!);
      // What it still held died with it (ipc sends in flight settle later, and find nothing held).
      this.clients.releaseAll(w);
    }
    this.requeue(back);
    // Handed back before it died: ahead of what it never received.
    this.rehome(moved, movedLost, movedKeys);
    this.flushIfNoWorker();
    this.drain();
  }

  /** Every worker gone (crash backoff) or stalled past --stall-timeout: waiting is pointless, tell them busy now. */
  flushIfNoWorker(): void {
    if (this.pool.responsive > 0) return;
    for (let q = this.queue.shiftOldest(); q; q = this.queue.shiftOldest()) this.reject(q.item, 'no_worker');
  }

  /** The queue is FIFO with one timeout, so only its head can be overdue first. */
  private armSweeper(): void {
    if (this.sweeper || this.queue.length === 0) return;
    const head = this.queue.peek()!;
    // Stryker disable next-line ArithmeticOperator,MethodExpression: equivalent, a timer that fires early (or overflows, which Node clamps to 1 ms) finds nothing overdue and re-arms: it polls
    this.sweeper = setTimeout(this.sweep, Math.max(1, head.at + this.queueTimeout - clock()));
  }

  private sweep = (): void => {
    this.sweeper = undefined;
    const limit = clock() - this.queueTimeout;
    // Stryker disable next-line EqualityOperator: equivalent, equal sub-millisecond times never meet here
    for (let q = this.queue.peek(); q && q.at <= limit; q = this.queue.peek()) {
      this.queue.shiftOldest();
      this.reject(q.item, 'queue_timeout');
    }
    this.armSweeper();
  };

  /** Shutdown: waiting connections and every new one are told busy (shutting_down). */
  close(): void {
    this.closing = true;
    // Stryker disable next-line ConditionalExpression: equivalent, clearTimeout(undefined) does nothing
    if (this.sweeper) clearTimeout(this.sweeper);
    for (let q = this.queue.shiftOldest(); q; q = this.queue.shiftOldest()) this.reject(q.item, 'shutting_down');
  }
}
