// Plain counters bumped on the accept path (a number increment, nothing more); the Prometheus
// collectors read them at scrape time.
import { REJECT_REASONS } from '../admission/busy.js';

/** Connections that ended in error rather than served or refused (label `reason`). */
export type ErrorReason = 'worker_exit' | 'drain_timeout' | 'handoff_failed' | 'accept_failed' | 'bad_request' | 'client_reset' | 'timeout' | 'handler_error' | 'tls_handshake';
export const ERROR_REASONS: readonly ErrorReason[] = ['worker_exit', 'drain_timeout', 'handoff_failed', 'accept_failed', 'bad_request', 'client_reset', 'timeout', 'handler_error', 'tls_handshake'];

/** Why a worker was replaced (label `reason` of acceptor_worker_restarts_total). */
export type RestartReason = 'crash' | 'startup' | 'watchdog' | 'reload';
export const RESTART_REASONS: readonly RestartReason[] = ['crash', 'startup', 'watchdog', 'reload'];

/** Set on a socket once an error is counted for it: one connection, at most one error reason. */
const COUNTED = Symbol('acceptor.errorCounted');

/** Counts `reason` for this connection unless it already has one. */
export function countOnce(counters: Counters, socket: object, reason: ErrorReason): void {
  // A TLS socket counts on the connection it wraps (Node's `_parent`): whichever layer sees the
  // error, the connection has one reason.
  const s = ((socket as { _parent?: object })._parent ?? socket) as { [COUNTED]?: true };
  if (s[COUNTED]) return;
  s[COUNTED] = true;
  counters.errors[reason]++;
}

const zeroes = <K extends string>(keys: readonly K[]): Record<K, number> =>
  Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;

export class Counters {
  accepted = 0;
  /** Connections a draining worker handed back to be served on by another (primary, fdpass). */
  migrated = 0;
  readonly rejected = zeroes(REJECT_REASONS);
  readonly errors = zeroes(ERROR_REASONS);
  readonly restarts = zeroes(RESTART_REASONS);
}
