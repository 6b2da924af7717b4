// Keep-alive clients as pools and browsers are: each holds one connection and sends its next request
// as soon as the answer is in. A connection the server closes is opened again (a reconnect); a
// request whose connection closes or fails before its answer is a failed request. Latency per
// request, with its start time, so that the seconds after a reload can be told apart. `hold`, asked at
// the deadline, keeps the clients going until what it returns settles (a reload under way).
import { connect } from 'node:net';

export interface KeepAliveResult {
  ok: number;
  /** Requests sent and never answered (the connection closed or failed under them). */
  failed: number;
  /** Connections opened in all (the first `n` included). */
  connects: number;
  /** Answers that said `Connection: close`. */
  toldClose: number;
  /** [start ms since t0, latency ms] per answered request. */
  samples: [number, number][];
  elapsedMs: number;
}

const REQUEST = Buffer.from('GET / HTTP/1.1\r\nHost: bench\r\n\r\n');

export async function keepAlive(port: number, n: number, durationMs: number, during?: (elapsedMs: number) => void, hold?: () => Promise<unknown> | undefined): Promise<KeepAliveResult> {
  const r: KeepAliveResult = { ok: 0, failed: 0, connects: 0, toldClose: 0, samples: [], elapsedMs: 0 };
  const t0 = performance.now();
  let over = false;
  void new Promise((res) => setTimeout(res, durationMs)).then(() => hold?.()).catch(() => undefined).then(() => (over = true));
  const one = async (): Promise<void> => {
    while (!over) {
      r.connects++;
      const socket = connect({ port, host: '127.0.0.1' });
      socket.setNoDelay(true);
      let buf = '';
      let ended = false;
      let wake: (() => void) | undefined;
      socket.setEncoding('latin1');
      socket.on('data', (d: string) => ((buf += d), wake?.()));
      socket.on('error', () => ((ended = true), wake?.()));
      socket.on('close', () => ((ended = true), wake?.()));
      for (let again = true; again && !over; ) {
        const start = performance.now();
        socket.write(REQUEST);
        for (;;) {
          const head = buf.indexOf('\r\n\r\n');
          const length = head < 0 ? -1 : Number(/\r\ncontent-length: *(\d+)/i.exec(buf.slice(0, head))?.[1] ?? 0);
          if (head >= 0 && buf.length >= head + 4 + length) {
            const headers = buf.slice(0, head);
            buf = buf.slice(head + 4 + length);
            const now = performance.now();
            r.ok++;
            r.samples.push([start - t0, now - start]);
            if (/\r\nconnection: *close/i.test(headers)) (r.toldClose++, (again = false));
            break;
          }
          if (ended) {
            r.failed++;
            again = false;
            break;
          }
          await new Promise<void>((resolve) => (wake = resolve));
        }
      }
      socket.destroy();
    }
  };
  const timer = during ? setInterval(() => during(performance.now() - t0), 50) : undefined;
  await Promise.all(Array.from({ length: n }, one));
  if (timer) clearInterval(timer);
  r.elapsedMs = performance.now() - t0;
  return r;
}
