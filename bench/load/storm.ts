// A connection storm on node:net: `concurrency` loops, each opening a new connection per attempt
// until the deadline. `http` sends one GET with Connection: close and reads the answer; `tcp`
// connects and closes (accepts without HTTP); `https` is `http` over a new TLS session each time
// (no resumption: every attempt pays a full handshake, as a fresh client does). Every attempt
// ends in exactly one outcome; a TLS client refused with the acceptor's alert counts as busy.
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

export type ErrorKind = 'refused' | 'reset' | 'timeout' | 'other';
export const ERROR_KINDS: readonly ErrorKind[] = ['refused', 'reset', 'timeout', 'other'];

export interface StormOptions {
  host: string;
  port: number;
  mode: 'http' | 'tcp' | 'https';
  concurrency: number;
  durationMs: number;
  /** An attempt with no answer by then is a timeout. */
  timeoutMs: number;
  /** Stop after this many attempts in all (else only the deadline stops it). */
  maxAttempts?: number;
  /** For the harness's own test: forget one outcome, which the accounting must catch. */
  injectLoss?: boolean;
}

export interface Tally {
  attempts: number;
  /** Attempts whose TCP connect succeeded (what the server can have accepted). */
  connected: number;
  ok: number;
  busy: number;
  otherStatus: number;
  errors: Record<ErrorKind, number>;
}

export interface StormResult extends Tally {
  elapsedMs: number;
  /** Milliseconds per attempt, for 200s and for busy answers. */
  latency: { ok: number[]; busy: number[] };
}

const REQUEST = Buffer.from('GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n');

function kind(code: string | undefined): ErrorKind {
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'reset';
  if (code === 'ETIMEDOUT') return 'timeout';
  return 'other';
}

export function newTally(): Tally {
  return { attempts: 0, connected: 0, ok: 0, busy: 0, otherStatus: 0, errors: { refused: 0, reset: 0, timeout: 0, other: 0 } };
}

export async function storm(o: StormOptions): Promise<StormResult> {
  const r: StormResult = { ...newTally(), elapsedMs: 0, latency: { ok: [], busy: [] } };
  const t0 = performance.now();
  const deadline = t0 + o.durationMs;
  let lose = o.injectLoss === true;

  const attempt = (): Promise<void> =>
    new Promise((resolve) => {
      r.attempts++;
      const start = performance.now();
      const socket =
        o.mode === 'https'
          ? tlsConnect({ host: o.host, port: o.port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
          : connect({ host: o.host, port: o.port });
      let first = '';
      let error: string | undefined;
      let connected = false;
      socket.setTimeout(o.timeoutMs, () => {
        error = 'ETIMEDOUT';
        socket.destroy();
      });
      socket.once('connect', () => {
        connected = true;
        r.connected++;
        if (o.mode === 'http') socket.write(REQUEST);
        else if (o.mode === 'tcp') socket.end();
      });
      if (o.mode === 'https') socket.once('secureConnect', () => socket.write(REQUEST));
      socket.on('data', (d: Buffer) => {
        if (first.length < 16) first += d.toString('latin1', 0, 16);
      });
      socket.on('error', (e: NodeJS.ErrnoException) => (error ??= e.code ?? 'other'));
      socket.on('close', () => {
        const ms = performance.now() - start;
        if (lose) {
          lose = false; // an outcome nobody counts
        } else if (o.mode === 'tcp' && connected && !error) {
          r.ok++;
          r.latency.ok.push(ms);
        } else if (first.startsWith('HTTP/1.1 200')) {
          r.ok++;
          r.latency.ok.push(ms);
        } else if (first.startsWith('HTTP/1.1 503') || (o.mode === 'tcp' && first.length > 0) || error === 'ERR_SSL_TLSV1_ALERT_INTERNAL_ERROR') {
          r.busy++;
          r.latency.busy.push(ms);
        } else if (first.startsWith('HTTP/')) {
          r.otherStatus++;
        } else {
          r.errors[kind(error ?? (connected ? 'ECONNRESET' : undefined))]++;
        }
        resolve();
      });
    });

  const loop = async (): Promise<void> => {
    while (performance.now() < deadline && r.attempts < (o.maxAttempts ?? Infinity)) await attempt();
  };
  await Promise.all(Array.from({ length: o.concurrency }, loop));
  r.elapsedMs = performance.now() - t0;
  return r;
}

/** p-th percentile (0..100) of `values`, or 0 when empty. Sorts in place. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  values.sort((a, b) => a - b);
  return values[Math.min(values.length - 1, Math.ceil((p / 100) * values.length) - 1)]!;
}
