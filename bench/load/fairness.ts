// One hostile client and one well-behaved one, from two loopback addresses. The hog (127.0.0.2)
// holds `idle` connections open without a request and reconnects in `loops` loops as fast as it
// is answered; the good client (127.0.0.3) sends one request a `everyMs` on a new connection. What
// matters is the good client's share served and its p99 while the hog runs.
import { connect } from 'node:net';
import { percentile } from './storm.js';

export interface FairnessOptions {
  port: number;
  durationMs: number;
  idle: number;
  loops: number;
  everyMs: number;
  timeoutMs: number;
}

export interface FairnessResult {
  good: { attempts: number; ok: number; p99: number; outcomes: Record<string, number> };
  hog: { attempts: number; ok: number; idleHeld: number };
}

const REQUEST = Buffer.from('GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n');

/** One request on a new connection from `local`: its status line's code (or the error) and time. */
function once(port: number, local: string, timeoutMs: number): Promise<{ outcome: string; ms: number }> {
  return new Promise((resolve) => {
    const start = performance.now();
    const s = connect({ port, host: '127.0.0.1', localAddress: local });
    let first = '';
    let error: string | undefined;
    s.setTimeout(timeoutMs, () => ((error = 'timeout'), s.destroy()));
    s.once('connect', () => s.write(REQUEST));
    s.on('data', (d: Buffer) => (first.length < 12 ? (first += d.toString('latin1', 0, 12)) : undefined));
    s.on('error', (e: NodeJS.ErrnoException) => (error ??= e.code ?? 'error'));
    s.on('close', () => resolve({ outcome: /^HTTP\/1\.1 (\d{3})/.exec(first)?.[1] ?? error ?? 'closed', ms: performance.now() - start }));
  });
}

export async function fairness(o: FairnessOptions): Promise<FairnessResult> {
  const r: FairnessResult = { good: { attempts: 0, ok: 0, p99: 0, outcomes: {} }, hog: { attempts: 0, ok: 0, idleHeld: 0 } };
  const deadline = performance.now() + o.durationMs;
  const idle = Array.from({ length: o.idle }, () => {
    const s = connect({ port: o.port, host: '127.0.0.1', localAddress: '127.0.0.2' });
    s.on('error', () => {});
    return s;
  });
  const hogLoop = async (): Promise<void> => {
    while (performance.now() < deadline) {
      r.hog.attempts++;
      if ((await once(o.port, '127.0.0.2', o.timeoutMs)).outcome === '200') r.hog.ok++;
    }
  };
  const latencies: number[] = [];
  const good = async (): Promise<void> => {
    const pending: Promise<void>[] = [];
    for (let next = performance.now(); next < deadline; next += o.everyMs) {
      await new Promise((res) => setTimeout(res, Math.max(0, next - performance.now())));
      r.good.attempts++;
      pending.push(once(o.port, '127.0.0.3', o.timeoutMs).then(({ outcome, ms }) => {
        r.good.outcomes[outcome] = (r.good.outcomes[outcome] ?? 0) + 1;
        if (outcome === '200') (r.good.ok++, latencies.push(ms));
      }));
    }
    await Promise.all(pending);
  };
  // The hog first: its idle connections are in before the good client starts.
  await new Promise((res) => setTimeout(res, 300));
  await Promise.all([good(), ...Array.from({ length: o.loops }, hogLoop)]);
  r.hog.idleHeld = idle.filter((s) => !s.destroyed && s.readyState === 'open').length;
  for (const s of idle) s.destroy();
  r.good.p99 = percentile(latencies, 99);
  return r;
}
