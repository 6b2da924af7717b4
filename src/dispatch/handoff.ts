// The default strategy. The primary accepts every connection itself, unread, and either hands it
// to the least-loaded ready worker with a free slot, or queues it (FIFO, at most --backlog), or
// tells it busy. Admission is exact because the primary alone counts the slots: a slot is taken
// at hand-off and freed when the worker reports the connection closed.
import type { Server } from 'node:net';
import { BoundedQueue } from '../admission/queue.js';
import { clock } from '../clock.js';
import type { Refuse, RejectReason } from '../admission/busy.js';
import type { Counters } from '../metrics/counters.js';
import type { Pool, WorkerRecord } from '../primary/pool.js';
import type { FromWorker } from '../worker/protocol.js';
import { acceptRaw, asSocket, releaseSent, type Conn } from './accept.js';

export class Handoff {
  readonly queue: BoundedQueue<Conn>;
  private closing = false;
  private next = 0;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    server: Server,
    private readonly pool: Pool,
    private readonly maxConnections: number,
    backlog: number,
    private readonly queueTimeout: number,
    private readonly counters: Counters,
    private readonly refuse: Refuse,
  ) {
    this.queue = new BoundedQueue(backlog);
    // A failed accept (out of file descriptors: libuv then accepts and closes to make progress)
    // is counted; before, it was an unhandled 'error' on the server.
    acceptRaw(server, this.onConnection, () => this.counters.errors.accept_failed++);
  }

  private onConnection = (socket: Conn): void => {
    this.counters.accepted++;
    if (this.closing) return this.reject(socket, 'shutting_down');
    const at = clock();
    // Oldest first: while anyone waits, a newcomer queues behind them.
    if (this.queue.length === 0) {
      const w = this.pick();
      if (w) return this.send(w, socket, at);
    }
    if (this.pool.responsive === 0) return this.reject(socket, 'no_worker');
    if (!this.queue.push(socket, at)) return this.reject(socket, 'queue_full');
    this.armSweeper();
  };

  private reject(socket: Conn, reason: RejectReason): void {
    this.counters.rejected[reason]++;
    this.refuse(asSocket(socket));
  }

  /** Least-loaded ready worker with a free slot; ties go round the slots in turn. */
  private pick(): WorkerRecord | undefined {
    const ready = this.pool.ready;
    const n = ready.length;
    let best: WorkerRecord | undefined;
    for (let i = 0; i < n; i++) {
      const w = ready[(this.next + i) % n]!;
      if (w.active < this.maxConnections && (best === undefined || w.active < best.active)) best = w;
    }
    if (best) this.next = (ready.indexOf(best) + 1) % n;
    return best;
  }

  private send(w: WorkerRecord, socket: Conn, at: number): void {
    w.active++;
    w.unsent++;
    w.worker.send({ t: 'c', a: at }, socket as never, (err) => {
      w.unsent--;
      if (!err) {
        // Sent, but to a worker already counted out: lost with it.
        if (w.gone) this.counters.errors.worker_exit++;
        return releaseSent(socket);
      }
      // Never written to the channel (the worker died first): the primary still holds the
      // socket, so it keeps its place at the front of the queue. The worker gets nothing more:
      // picked again before its exit is processed, it would fail again on every tick.
      this.pool.detach(w);
      w.active--;
      if (this.closing) return this.reject(socket, 'shutting_down');
      this.queue.unshift({ item: socket, at });
      this.armSweeper();
      this.drain();
    });
  }

  /** Hands queued connections to free slots, oldest first. */
  drain(): void {
    while (this.queue.length > 0) {
      const w = this.pick();
      if (!w) return;
      const q = this.queue.shift()!;
      this.send(w, q.item, q.at);
    }
  }

  onMessage(w: WorkerRecord, msg: FromWorker): void {
    if (msg.t === 'd') {
      w.active -= msg.n;
      this.drain();
    }
  }

  onReady(): void {
    this.drain();
  }

  /**
   * Connections a worker held when it died are lost with it: counted, and their slots freed.
   * Sends still in progress are counted when they complete (lost) or fail (handed on), so the
   * counter only ever rises.
   */
  onExit(w: WorkerRecord): void {
    this.counters.errors.worker_exit += w.active - w.unsent;
    w.active = 0;
    this.flushIfNoWorker();
    this.drain();
  }

  /** Every worker gone (crash backoff) or stalled: waiting is pointless, tell them busy now. */
  flushIfNoWorker(): void {
    if (this.pool.responsive > 0) return;
    for (let q = this.queue.shift(); q; q = this.queue.shift()) this.reject(q.item, 'no_worker');
  }

  /** The queue is FIFO with one timeout, so only its head can be overdue first. */
  private armSweeper(): void {
    if (this.sweeper || this.queue.length === 0) return;
    const head = this.queue.peek()!;
    this.sweeper = setTimeout(this.sweep, Math.max(1, head.at + this.queueTimeout - clock()));
  }

  private sweep = (): void => {
    this.sweeper = undefined;
    const limit = clock() - this.queueTimeout;
    for (let q = this.queue.peek(); q && q.at <= limit; q = this.queue.peek()) {
      this.queue.shift();
      this.reject(q.item, 'queue_timeout');
    }
    this.armSweeper();
  };

  /** Shutdown: waiting connections and every new one are told busy (shutting_down). */
  close(): void {
    this.closing = true;
    if (this.sweeper) clearTimeout(this.sweeper);
    for (let q = this.queue.shift(); q; q = this.queue.shift()) this.reject(q.item, 'shutting_down');
  }
}
