// Node's IPC sends one handle at a time per worker and queues the rest until the worker
// acknowledges the one in flight. When the worker dies first, Node neither sends, closes nor
// fails the queued ones, and keeps the unacknowledged one open: those clients would hang until
// their own timeout. This reaches into that queue (`_handleQueue`, `_pendingMessage`: the same
// in Node 20–24) and is a no-op where the fields are absent.
import type { Worker } from 'node:cluster';

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
  const pending = cp._pendingMessage;
  if (pending) {
    cp._pendingMessage = null;
    pending.handle?.close?.();
  }
  const queued = cp._handleQueue;
  if (!Array.isArray(queued)) return 0;
  cp._handleQueue = null;
  const err = new Error('worker exited before the hand-off was sent');
  for (const q of queued) q.callback?.(err);
  return queued.length;
}
