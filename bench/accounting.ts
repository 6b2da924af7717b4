// Every connection accounted for: the client's outcomes add up, and agree with the server's counters.
import { ERROR_KINDS, type Tally } from './load/storm.js';
import type { ServerCounters } from './sample.js';

export interface Accounting {
  ok: boolean;
  /** Exact (own client: every attempt has an outcome) or within a stated tolerance (autocannon). */
  exact: boolean;
  problems: string[];
  note?: string;
}

const sum = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);

export function serverDelta(before: ServerCounters, after: ServerCounters): { accepted: number; rejected: number; byReason: Record<string, number> } {
  const byReason: Record<string, number> = {};
  for (const [k, v] of Object.entries(after.rejected)) byReason[k] = v - (before.rejected[k] ?? 0);
  return { accepted: after.accepted - before.accepted, rejected: sum(byReason), byReason };
}

/**
 * `tolerance` 0 = exact. `busyComparable`: the client saw every refusal (http); a tcp storm that
 * closes at once cannot tell a refused connection from a served one, so only accepts compare.
 */
export function reconcile(client: Tally, server: { accepted: number; rejected: number } | undefined, tolerance = 0, busyComparable = true): Accounting {
  const problems: string[] = [];
  const outcomes = client.ok + client.busy + client.otherStatus + ERROR_KINDS.reduce((n, k) => n + client.errors[k], 0);
  if (outcomes !== client.attempts) {
    problems.push(`client: ${client.attempts} attempts but ${outcomes} outcomes (served ${client.ok} + busy ${client.busy} + other status ${client.otherStatus} + errors ${sum(client.errors)}): ${client.attempts - outcomes} unaccounted`);
  }
  if (server) {
    const d = server.accepted - client.connected;
    if (Math.abs(d) > tolerance) {
      // Connected but never accepted: the kernel completed the handshake, no one took it off the
      // listen queue before the client gave up.
      const why = d < 0 && client.errors.timeout > 0 ? ` (left in the kernel's listen queue; the client timed out ${client.errors.timeout} times)` : '';
      problems.push(`server accepted ${server.accepted} connections, client connected ${client.connected}: difference ${d}${why}`);
    }
    const b = server.rejected - client.busy;
    if (busyComparable && Math.abs(b) > tolerance) problems.push(`server told ${server.rejected} busy, client saw ${client.busy}: difference ${b}`);
  }
  return { ok: problems.length === 0, exact: tolerance === 0, problems };
}
