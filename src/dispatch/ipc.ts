// The ipc transport: Node's own channel. `worker.send(msg, handle)` passes one descriptor and
// queues every later message until the worker acknowledges it (NODE_HANDLE_ACK), so one
// hand-off is in flight per worker at a time. Kept where the fdpass addon is unavailable.
import type { Server } from 'node:net';
import type { Refuse } from '../admission/busy.js';
import type { Worker } from 'node:cluster';
import type { Waiting } from '../admission/queue.js';
import type { WorkerRecord } from './workers.js';
import { clock } from '../clock.js';
import { acceptRaw, asSocket, releaseSent, type Conn } from './accept.js';
import { clientKey, type Prefixes } from '../admission/client.js';
import type { Detached, Sink, Transport } from './transport.js';

export class IpcTransport implements Transport<Conn> {
  private sink!: Sink<Conn>;
  /** While a dead worker's queue is reclaimed: its failed sends, collected in order. */
  private collecting: Waiting<Conn>[] | undefined;

  /** `keys`: each connection's client key is wanted, by these prefixes. */
  constructor(
    private readonly refuseSocket: Refuse,
    private readonly keys?: Prefixes,
  ) {}

  peer(conn: Conn): string | undefined {
    const h = conn as { getpeername?: (out: { address?: string }) => number; remoteAddress?: string };
    if (typeof h.getpeername !== 'function') return h.remoteAddress;
    const out: { address?: string } = {};
    h.getpeername(out);
    return out.address;
  }

  start(server: Server, sink: Sink<Conn>): void {
    this.sink = sink;
    const p = this.keys;
    // A failed accept (out of descriptors: libuv then accepts and closes to make progress).
    // Libuv reports one only where that trick itself fails (no spare descriptor was ever
    // reserved); the usual EMFILE is drained silently and cannot be counted here
    // (docs/metrics.md, accept_failed).
    // Stryker disable next-line ArrowFunction: no test reaches the failed-accept callback
    const admit = p ? (c: Conn): void => sink.admit(c, clock(), clientKey(this.peer(c) ?? '', p)) : (c: Conn): void => sink.admit(c, clock());
    acceptRaw(server, (c) => (admit(c), sink.batchDone()), () => sink.acceptFailed(1));
  }

  assign(w: WorkerRecord, conn: Conn, at: number, key: number): void {
    w.unsent++;
    w.worker.send(key ? { acceptor: 'c', a: at, k: key } : { acceptor: 'c', a: at }, conn as never, (err) => {
      w.unsent--;
      if (!err) {
        // Sent, but to a worker already counted out. Node reports an asynchronous write as sent
        // however it ends, so a hand-off still queued behind a full channel at the death lands here.
        if (w.gone) this.sink.lost(1);
        releaseSent(conn);
        return this.sink.sent();
      }
      // Never written to the channel (the worker died first): the primary still holds it.
      const back = { item: conn, at, key };
      if (this.collecting) this.collecting.push(back);
      else this.sink.undelivered(w, [back]);
    });
  }

  flush(): void {}

  slotsWanted(): void {} // Node's channel is always read

  refuse(conn: Conn): void {
    this.refuseSocket(asSocket(conn));
  }

  prepareFork(): undefined {
    // Stryker disable next-line BlockStatement: equivalent, an empty body returns the same
    return undefined;
  }

  /** Node's channel cannot send a connection back with its unread bytes: drained workers close them. */
  movable(): boolean {
    return false;
  }

  detach(w: WorkerRecord): Detached<Conn> {
    this.collecting = [];
    try {
      reclaimUnsent(w.worker);
      return { back: this.collecting, closed: 0, moved: [], movedLost: 0 };
    } finally {
      this.collecting = undefined;
    }
  }

  stop(): void {}
}

// When the worker dies first, Node neither sends, closes nor fails the queued handles, and keeps
// the unacknowledged one open: those clients would hang until their own timeout. This reaches
// into that queue (`_handleQueue`, `_pendingMessage`: the same in Node 20–25) and is a no-op
// where the fields are absent.
interface Queued {
  callback?: (err: Error | null) => void;
}
interface ChannelInternals {
  _handleQueue?: Queued[] | null;
  _pendingMessage?: { handle?: { close?: () => void } } | null;
}

/**
 * For a worker that has exited: closes the connection it never acknowledged (lost with it, like
 * the ones it held), and fails every queued send so its callback can hand the connection to
 * another worker. Returns how many queued sends were failed.
 */
export function reclaimUnsent(worker: Worker): number {
  const cp = worker.process as unknown as ChannelInternals;
  // Node keeps a pending message only for a handle it closes on the ACK (a net.Socket: the
  // fallback path of accept.ts); a raw handle was closed once written.
  const pending = cp._pendingMessage;
  // Stryker disable next-line ConditionalExpression,BlockStatement: on every Node this runs on the block is skipped
  if (pending) {
    cp._pendingMessage = null;
    pending.handle?.close?.();
  }
  const queued = cp._handleQueue;
  if (!Array.isArray(queued)) return 0;
  cp._handleQueue = null;
  // Stryker disable next-line StringLiteral: equivalent, its text is never read, only its presence
  const err = new Error('worker exited before the hand-off was sent');
  for (const q of queued) q.callback?.(err);
  return queued.length;
}
