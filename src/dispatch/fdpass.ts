// The fdpass transport: the native addon accepts in batches and passes descriptors to each worker
// over a socket pair of its own, up to 253 per sendmsg. Per worker, assigned connections wait in
// an outbox until the end of the accept batch (or of a drain), then go in as few messages as
// the channel takes; on EAGAIN the rest stay, in order, until the channel is writable again.
import type { Server } from 'node:net';
import type { Waiting } from '../admission/queue.js';
import type { WorkerRecord } from './workers.js';
import { clock } from '../clock.js';
import type { Channel, FdpassAddon, Listener, Refuser } from '../native/fdpass.js';
import type { Prefixes } from '../admission/client.js';
import { UNBOUNDED, type Detached, type ForkLink, type PrimaryBudget, type Sink, type Transport } from './transport.js';

interface Link {
  ch: Channel;
  rec: WorkerRecord | undefined;
  /** Outbox: descriptors assigned and not yet sent, with their accept times and client keys; `head` is the oldest. */
  fds: number[];
  at: number[];
  keys: number[];
  head: number;
  /** Listed in `dirty` for the next flush. */
  dirty: boolean;
  /** The channel said EAGAIN: wait for writable. */
  blocked: boolean;
  retry: NodeJS.Timeout | undefined;
  gone: boolean;
  /** Draining, and handing its idle connections back: its channel is always heard. */
  moving: boolean;
}

/** A send error that is not the channel being full: out of kernel memory or in-flight fd quota. */
const RETRY_MS = 10;

export class FdpassTransport implements Transport<number> {
  private sink!: Sink<number>;
  private listener: Listener | undefined;
  private dirty: Link[] = [];
  /** Live channels: their close reports are read at the start of every accept batch. */
  private links = new Set<Link>();
  /** Connections wait for a slot: a close report must wake the primary. */
  // Stryker disable next-line BooleanLiteral: equivalent, every batch sets it before anyone can wait
  private wanting = true;
  private scratchFds = new Int32Array(1024);
  private scratchAt = new Float64Array(1024);
  private scratchKeys = new Float64Array(1024);

  /** Busy answers in C: under saturation most connections end there. */
  private readonly refuser: Refuser;

  /**
   * `keys`: each connection's client key is wanted (by these prefixes); `byKey`: workers tell
   * closes by key (the primary counts per client).
   */
  constructor(
    private readonly addon: FdpassAddon,
    busy: Buffer | 'reset',
    private readonly budget: PrimaryBudget = UNBOUNDED,
    private readonly keys?: Prefixes,
    private readonly byKey = false,
  ) {
    this.refuser = addon.refuser(busy === 'reset' ? null : busy, budget.maxLingering);
  }

  start(server: Server, sink: Sink<number>): void {
    this.sink = sink;
    const handle = (server as unknown as { _handle?: { fd?: number } })._handle;
    // It stays for a Node that changes the handle.
    // Stryker disable next-line ConditionalExpression,LogicalOperator,EqualityOperator,OptionalChaining,StringLiteral: a bound server always has one on Linux
    if (handle?.fd === undefined || handle.fd < 0) throw new Error('fdpass: the listening socket has no descriptor');
    this.listener = this.addon.listen(handle.fd, (fds, failed, _errno, keys) => {
      // Slots freed since the last batch, before admitting this one.
      this.readReports();
      // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, it only skips a call that adds 0
      if (failed > 0) sink.acceptFailed(failed);
      const at = clock();
      // Without keys wanted, `keys` is empty: every connection is client 0.
      for (let i = 0; i < fds.length; i++) sink.admit(fds[i]!, at, keys[i] ?? 0);
      sink.batchDone();
    }, this.budget.acceptBatch, this.keys?.v4, this.keys?.v6);
    // The addon accepts on its own copy from now on; libuv must stop accepting on this one.
    server.close();
  }

  private readReports(): void {
    for (const l of this.links) {
      const n = this.addon.reports(l.ch);
      // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, it only skips a call that adds 0
      if (n > 0) this.sink.closed(l.rec!, n, this.closedKeys(l));
      if (l.moving) this.takeMoved(l);
    }
  }

  settle(): void {
    this.readReports();
    this.sink.batchDone();
  }

  assign(w: WorkerRecord, fd: number, at: number, key: number): void {
    const l = w.link as Link;
    l.fds.push(fd);
    l.at.push(at);
    l.keys.push(key);
    // Stryker disable next-line ConditionalExpression,BooleanLiteral: equivalent, listed more than once, a later push finds an empty outbox
    if (!l.dirty) {
      l.dirty = true;
      this.dirty.push(l);
    }
  }

  flush(): void {
    // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, a fast path
    if (this.dirty.length === 0) return;
    const dirty = this.dirty;
    this.dirty = [];
    for (const l of dirty) {
      l.dirty = false;
      this.push(l);
    }
  }

  /**
   * Close reports wake the primary only while connections wait for a slot; otherwise they are
   * read at the next accept batch, when the slot counts are needed. Most wake-ups they would cost
   * are saved, and each costs two context switches on a loaded machine.
   */
  // Stryker disable next-line BlockStatement: equivalent, reports keep waking the primary as at the start: more wake-ups, the same admissions
  slotsWanted(waiting: boolean): void {
    // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, it re-sets the same flag
    if (waiting === this.wanting) return;
    this.wanting = waiting;
    for (const l of this.links) this.addon.wantReports(l.ch, waiting || l.moving);
  }

  movable(w: WorkerRecord): boolean {
    const l = w.link as Link | undefined;
    if (!l || l.gone) return false;
    l.moving = true;
    // A connection handed back must be heard at once: its client may be sending to it already.
    this.addon.wantReports(l.ch, true);
    return true;
  }

  private takeMoved(l: Link): void {
    const m = this.addon.takeMoved(l.ch);
    if (m) this.sink.moved(l.rec!, Array.from(m.fds), m.lost, m.keys);
  }

  /** The keys of the closes just counted, where workers tell them by key. */
  private closedKeys(l: Link): Float64Array | undefined {
    return this.byKey ? (this.addon.takeClosedKeys(l.ch) ?? undefined) : undefined;
  }

  peer(fd: number): string | undefined {
    return this.addon.peer(fd) ?? undefined;
  }

  private push(l: Link): void {
    // These guards only save a call: a send on a full channel takes nothing and re-arms the
    // addon's wake-up, a retry sent early sends the same outbox from its head, a gone link is never
    // flushed or woken again, and an empty send sends nothing.
    // Stryker disable next-line ConditionalExpression,LogicalOperator: equivalent, as said
    if (l.blocked || l.gone || l.retry) return;
    const n = l.fds.length - l.head;
    // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, an empty send sends nothing
    if (n === 0) return;
    // Stryker disable next-line ConditionalExpression,EqualityOperator,ArithmeticOperator: equivalent, growing when not needed costs memory only
    if (this.scratchFds.length < n) {
      this.scratchFds = new Int32Array(n * 2);
      this.scratchAt = new Float64Array(n * 2);
      this.scratchKeys = new Float64Array(n * 2);
    }
    for (let i = 0; i < n; i++) {
      this.scratchFds[i] = l.fds[l.head + i]!;
      this.scratchAt[i] = l.at[l.head + i]!;
      this.scratchKeys[i] = l.keys[l.head + i]!;
    }
    const sent = this.addon.send(l.ch, this.scratchFds, this.scratchAt, 0, n, this.scratchKeys);
    // Stryker disable next-line EqualityOperator: equivalent, with `<= 0` a full channel is polled every RETRY_MS
    if (sent < 0) {
      // Not EAGAIN (that returns a short count): ENOBUFS or ETOOMANYREFS. Nothing is lost: the
      // outbox stays as it is and is tried again shortly; a dead worker's outbox is handed on.
      // Untested: the kernel refuses descriptors in flight (ETOOMANYREFS) only to a sender
      // without CAP_SYS_RESOURCE, and the tests run as root.
      // Stryker disable next-line ArrowFunction,BlockStatement: untested, as said
      l.retry = setTimeout(() => {
        l.retry = undefined;
        this.push(l);
      }, RETRY_MS);
      return;
    }
    l.head += sent;
    // Emptying it only keeps the outbox from growing: without, it is still sent from its head.
    // Stryker disable next-line ConditionalExpression,EqualityOperator: a cost in memory, not in what is delivered
    if (l.head === l.fds.length) {
      l.fds.length = 0;
      l.at.length = 0;
      l.keys.length = 0;
      l.head = 0;
    } else {
      l.blocked = true; // EAGAIN: the addon calls back when the worker has read
    }
  }

  refuse(fd: number): void {
    this.addon.refuse(this.refuser, fd);
  }

  prepareFork(): ForkLink {
    const l: Link = { ch: undefined as unknown as Channel, rec: undefined, fds: [], at: [], keys: [], head: 0, dirty: false, blocked: false, retry: undefined, gone: false, moving: false };
    const [ch, fd] = this.addon.channel(
      (n) => {
        if (!l.rec || l.gone) return;
        if (n > 0) this.sink.closed(l.rec, n, this.closedKeys(l));
        if (l.moving) this.takeMoved(l);
      },
      () => {
        l.blocked = false;
        this.push(l);
      },
    );
    l.ch = ch;
    this.addon.wantReports(ch, this.wanting);
    return {
      fd,
      attach: (rec) => {
        l.rec = rec;
        rec.link = l;
        this.links.add(l);
      },
    };
  }

  /**
   * The worker has exited. What it never read is still in its end of the channel (the primary
   * holds a copy of that end): read back, with what was still in the outbox, in admission order.
   */
  detach(w: WorkerRecord): Detached<number> {
    const l = w.link as Link | undefined;
    if (!l || l.gone) return { back: [], closed: 0, moved: [], movedLost: 0 };
    l.gone = true;
    this.links.delete(l);
    // Stryker disable next-line ConditionalExpression: equivalent, clearTimeout(undefined) does nothing
    if (l.retry) clearTimeout(l.retry);
    const r = this.addon.reclaim(l.ch);
    const back: Waiting<number>[] = [];
    for (let i = 0; i < r.fds.length; i++) back.push({ item: r.fds[i]!, at: r.at[i]!, key: r.keys[i]! });
    for (let i = l.head; i < l.fds.length; i++) back.push({ item: l.fds[i]!, at: l.at[i]!, key: l.keys[i]! });
    l.fds.length = 0;
    l.at.length = 0;
    l.keys.length = 0;
    l.head = 0;
    return { back, closed: r.closed, closedKeys: r.closedKeys, moved: Array.from(r.moved), movedKeys: r.movedKeys, movedLost: r.movedLost };
  }

  stop(): void {
    if (this.listener) this.addon.unlisten(this.listener);
    this.listener = undefined;
  }
}
