// autocannon, normalised. `close` sends `connection: close` (a new connection per request) —
// not `reconnectRate`, which drops those responses from autocannon's results.
import autocannon from 'autocannon';
import type { ErrorKind } from './storm.js';

export interface CannonResult {
  requests: number;
  rps: number;
  p50: number;
  p99: number;
  p999: number;
  ok: number;
  busy: number;
  non2xx: number;
  errors: Record<ErrorKind, number>;
  elapsedMs: number;
}

export function cannon(url: string, connections: number, durationS: number, close: boolean): Promise<CannonResult> {
  const errors: Record<ErrorKind, number> = { refused: 0, reset: 0, timeout: 0, other: 0 };
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      { url, connections, duration: durationS, pipelining: 1, timeout: 10, headers: close ? { connection: 'close' } : {} },
      (err, res) => {
        if (err) return reject(err);
        const codes = res.statusCodeStats ?? {};
        errors.timeout = res.timeouts;
        resolve({
          requests: res.requests.total,
          rps: res.requests.average,
          p50: res.latency.p50,
          p99: res.latency.p99,
          p999: res.latency.p99_9,
          ok: codes['200']?.count ?? 0,
          busy: codes['503']?.count ?? 0,
          non2xx: res.non2xx,
          errors,
          elapsedMs: res.duration * 1000,
        });
      },
    );
    instance.on('reqError', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNREFUSED') errors.refused++;
      else if (e.code === 'ECONNRESET' || e.code === 'EPIPE') errors.reset++;
      else if (e.code !== undefined && /TIMEDOUT/.test(e.code)) errors.timeout++;
      else errors.other++;
    });
  });
}
