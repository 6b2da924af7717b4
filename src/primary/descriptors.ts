// Descriptors: every connection a worker holds is one, and so is every connection the primary
// queues. Node raises every process's soft RLIMIT_NOFILE to the hard limit as it starts (as Go's
// runtime and nginx's worker_rlimit_nofile do), so the hard limit is what counts. A worker that ran
// out would lose hand-offs in transit: the kernel drops the descriptors and those clients are closed
// with no answer. So --max-connections and --backlog are capped at what the limit can hold, with a
// warning: a worker is full before it runs out, and the connections beyond wait or are told busy.
import type { Logger } from '../log.js';
import { nofile } from '../nofile.js';
import type { AcceptorOptions } from '../options.js';
import { UNBOUNDED, type PrimaryBudget } from '../dispatch/transport.js';

/** Descriptors a process keeps besides its connections: Node's own, the channels, an app's files and pools. */
export const RESERVE = 64;

/**
 * Logs the limit and caps `opts.maxConnections` (a worker's) and, for handoff, `opts.backlog` (the
 * primary's queue) at what it can hold. The primary's descriptors, less RESERVE and two per worker,
 * go half at most to the queue; what the queue leaves, half to an accept batch, half to lingering
 * refusals.
 */
export function fitDescriptors(opts: Pick<AcceptorOptions, 'maxConnections' | 'backlog' | 'workers' | 'strategy'>, log: Logger, limit = nofile()): PrimaryBudget {
  if (limit === undefined) return UNBOUNDED;
  const { soft, hard } = limit;
  log.info({ soft, hard }, 'descriptor limit');
  const fix = ' Raise the hard limit (ulimit -Hn, systemd LimitNOFILE=) to allow more.';
  const worker = Math.max(1, soft - RESERVE);
  if (opts.maxConnections > worker) {
    log.warn({ limit: soft, maxConnections: opts.maxConnections, capped: worker }, `--max-connections capped at the descriptor limit less ${RESERVE} for the worker itself:${fix}`);
    opts.maxConnections = worker;
  }
  const primary = Math.max(2, soft - RESERVE - 2 * opts.workers);
  const queue = Math.floor(primary / 2);
  if (opts.strategy === 'handoff' && opts.backlog > queue) {
    log.warn({ limit: soft, backlog: opts.backlog, capped: queue }, `--backlog capped at half the descriptor limit less ${RESERVE} and two per worker for the primary itself:${fix}`);
    opts.backlog = queue;
  }
  const rest = primary - Math.min(opts.backlog, primary);
  const acceptBatch = Math.max(1, Math.min(UNBOUNDED.acceptBatch, Math.floor(rest / 2)));
  return { acceptBatch, maxLingering: Math.max(0, rest - acceptBatch) };
}
