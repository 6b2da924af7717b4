// Descriptors: every connection a worker holds is one, and so is every connection the primary
// queues. Node raises every process's soft RLIMIT_NOFILE to the hard limit as it starts (as Go's
// runtime and nginx's worker_rlimit_nofile do), so the hard limit is what counts: it is logged at
// start and checked against what --max-connections and --backlog need. A worker out of descriptors
// loses hand-offs in transit (counted handoff_failed), and a primary out of them resets what it
// cannot accept (accept_failed).
import { readFileSync } from 'node:fs';
import type { Logger } from '../log.js';
import type { AcceptorOptions } from '../options.js';

/** Descriptors a process needs besides its connections: Node's own, the channels, an app's files and pools. */
export const RESERVE = 64;

/** The soft and hard RLIMIT_NOFILE of this process (Linux /proc), or undefined. */
export function nofile(): { soft: number; hard: number } | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const [soft, hard] = (line ?? '').slice('Max open files'.length).trim().split(/\s+/).map(Number);
    return Number.isFinite(soft) && Number.isFinite(hard) ? { soft: soft!, hard: hard! } : undefined;
  } catch {
    return undefined;
  }
}

/** Logs the limit, and warns where it falls short of what the options need. */
export function checkDescriptors(opts: Pick<AcceptorOptions, 'maxConnections' | 'backlog' | 'workers' | 'strategy'>, log: Logger): void {
  const limit = nofile();
  if (limit === undefined) return;
  const { soft, hard } = limit;
  log.info({ soft, hard }, 'descriptor limit');
  const worker = opts.maxConnections + RESERVE;
  if (soft < worker) {
    log.warn({ limit: soft, maxConnections: opts.maxConnections, needs: worker }, 'the descriptor limit is below what --max-connections needs in a worker: raise the hard limit (ulimit -Hn, LimitNOFILE=) or lower --max-connections');
  }
  // The primary holds each connection that waits in its queue (handoff), and two per worker.
  const primary = opts.backlog + 2 * opts.workers + RESERVE;
  if (opts.strategy === 'handoff' && soft < primary) {
    log.warn({ limit: soft, backlog: opts.backlog, needs: primary }, 'the descriptor limit is below what --backlog needs in the primary: raise the hard limit (ulimit -Hn, LimitNOFILE=) or lower --backlog');
  }
}
