// "Server busy", said explicitly: HTTP 503 + Retry-After + Connection: close, or for raw TCP a
// busy line or a reset. Never a silent close, never a hang.
import type { Socket } from 'node:net';
import type { AcceptorOptions, Protocol, TlsBusy } from '../options.js';

/**
 * Why a connection was refused: told busy, or (`blocked`, the app server's blockList) closed
 * unanswered as node closes it. Label values of acceptor_connections_rejected_total.
 */
export type RejectReason = 'queue_full' | 'queue_timeout' | 'shutting_down' | 'no_worker' | 'worker_full' | 'client_limit' | 'displaced' | 'blocked';
export const REJECT_REASONS: readonly RejectReason[] = ['queue_full', 'queue_timeout', 'shutting_down', 'no_worker', 'worker_full', 'client_limit', 'displaced', 'blocked'];

/** How long a refused socket may stay open waiting for the client to close after reading "busy". */
const LINGER_MS = 2000;

export type Refuse = (socket: Socket) => void;

const swallow = (): void => {};

/**
 * A fatal TLS alert record, internal_error (80), sent before any handshake: a TLS client reports
 * it at once ("tlsv1 alert internal error"), where a plain-text 503 would be garbage to it and a
 * handshake to send a real 503 would cost the primary its most expensive work exactly when it is
 * overloaded (docs/https.md). TLS has no "busy" alert; internal_error is the one for a failure
 * unrelated to the peer. Record version TLS 1.2, as TLS 1.3 records are written.
 */
export const TLS_BUSY_ALERT = Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 80]);

/** The busy answer; `tls` (--tls-busy) when the workers terminate TLS. */
export function busyPayload(protocol: Protocol, retryAfter: number, tcpBusy: string, tls?: TlsBusy): Buffer | 'reset' {
  if (tls !== undefined) return tls === 'reset' ? 'reset' : TLS_BUSY_ALERT;
  if (protocol === 'tcp') return tcpBusy === 'reset' ? 'reset' : Buffer.from(tcpBusy);
  const body = 'server busy\n';
  return Buffer.from(
    'HTTP/1.1 503 Service Unavailable\r\n' +
      `Retry-After: ${retryAfter}\r\n` +
      'Connection: close\r\n' +
      'Content-Type: text/plain\r\n' +
      `Content-Length: ${body.length}\r\n\r\n${body}`,
  );
}

/** The busy answer these options give. */
export const busyFor = (o: Pick<AcceptorOptions, 'protocol' | 'retryAfter' | 'tcpBusy' | 'tlsCert' | 'tlsBusy'>): Buffer | 'reset' =>
  busyPayload(o.protocol, o.retryAfter, o.tcpBusy, o.tlsCert !== undefined ? o.tlsBusy : undefined);

/**
 * Returns the refusal for one protocol, built once. The socket is read and discarded while the
 * answer is written: closing with unread request bytes would make the kernel send a reset,
 * which can destroy the 503 in the client's receive buffer before the client reads it.
 */
export function makeRefuse(payload: Buffer | 'reset', maxLingering = Number.MAX_SAFE_INTEGER): Refuse {
  if (payload === 'reset') {
    return (socket) => {
      // It stays, as an unhandled 'error' would take the primary down.
      // Stryker disable next-line StringLiteral: only a failing reset could emit here (libuv's EINVAL for a socket already shutting down, which this path never starts)
      socket.on('error', swallow);
      socket.resetAndDestroy();
    };
  }
  let lingering = 0;
  return (socket) => {
    socket.on('error', swallow);
    socket.resume();
    // No descriptor to spare for lingering (the limit's budget): closed once the answer is out.
    if (lingering >= maxLingering) return void socket.end(payload, () => socket.destroy());
    lingering++;
    // A deadline, not an idle timeout (socket.setTimeout): a client that keeps sending after its
    // answer would re-arm that for ever, and hold a descriptor of the primary's.
    const linger = setTimeout(() => socket.destroy(), LINGER_MS).unref();
    socket.once('close', () => (lingering--, clearTimeout(linger)));
    socket.end(payload);
  };
}
