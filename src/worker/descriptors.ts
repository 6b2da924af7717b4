// How many connections this worker's descriptors can hold: its limit, less what it holds besides
// connections (Node's own, the channels, the app's files and pools) and a cushion for hand-offs in
// transit. Past the limit the kernel drops descriptors in transit (fdpass) and libuv resets
// accepted ones: those clients would be closed with no answer. The primary assigns no more than
// this (beside --max-connections), so the rest wait in its queue or are told busy.
// Counting /proc/self/fd costs about 3 ms per 1,000 descriptors, so it is recounted every
// RECOUNT_MS (the connections themselves are known without it).
import { readdirSync } from 'node:fs';

/** Descriptors kept free for hand-offs in transit and what the app opens between counts. */
export const CUSHION = 32;
const RECOUNT_MS = 5000;

export class DescriptorBudget {
  private others = 0;
  private countedAt = -Infinity;

  constructor(
    private readonly limit: number,
    private readonly connections: () => number,
  ) {}

  /** Connections it can hold in all, at most (the count is at most RECOUNT_MS old). */
  capacity(now = Date.now()): number {
    if (now - this.countedAt >= RECOUNT_MS) {
      // Less one: the directory's own descriptor, open while it is read.
      this.others = Math.max(0, readdirSync('/proc/self/fd').length - 1 - this.connections());
      this.countedAt = now;
    }
    return Math.max(0, this.limit - CUSHION - this.others);
  }
}
