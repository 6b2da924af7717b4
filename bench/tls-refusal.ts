// `npm run bench:tls-refusal`: what telling a TLS client "busy" costs the process that refuses,
// per method, measured side by side: the primary's CPU per refusal (process.cpuUsage) and what
// the client sees. Each method answers in JavaScript with a net.Socket per connection (the
// acceptor's fdpass primary writes its answer from C, without one: cheaper still, alike for all).
// Methods: plain (today's plain-text 503: garbage to a TLS client), reset, alert (a fatal TLS
// internal_error alert, no handshake) and handshake (a full TLS handshake, then a real 503).
import { fork } from 'node:child_process';
import { createServer } from 'node:net';
import { TLSSocket, connect as tlsConnect, createSecureContext } from 'node:tls';
import { readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { benchCert } from './targets.js';
import { TLS_BUSY_ALERT, busyPayload } from '../src/admission/busy.js';

const METHODS = ['plain', 'reset', 'alert', 'handshake'] as const;
type Method = (typeof METHODS)[number];

/** The refusing process: answers every connection with `method`; reports its CPU on request. */
function serve(method: Method, cert: string, key: string): void {
  const ctx = createSecureContext({ cert: readFileSync(cert), key: readFileSync(key) });
  const http503 = busyPayload('http', 1, '') as Buffer;
  let n = 0;
  let cpu0: NodeJS.CpuUsage | undefined;
  const srv = createServer((s) => {
    if (n++ === 0) cpu0 = process.cpuUsage();
    s.on('error', () => {});
    if (method === 'reset') return void s.resetAndDestroy();
    if (method === 'plain' || method === 'alert') {
      s.resume();
      return void s.end(method === 'plain' ? http503 : TLS_BUSY_ALERT);
    }
    const t = new TLSSocket(s, { isServer: true, secureContext: ctx });
    t.on('error', () => {});
    t.on('secure', () => (t.resume(), t.end(http503)));
  });
  srv.listen(0, '127.0.0.1', () => process.send!({ port: (srv.address() as { port: number }).port }));
  process.on('message', () => {
    const c = process.cpuUsage(cpu0);
    process.send!({ n, us: c.user + c.system });
  });
}

async function measure(method: Method, cert: { cert: string; key: string }, total: number, concurrency: number): Promise<{ method: Method; perSecond: number; cpuUsPerRefusal: number; seen: Record<string, number> }> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', method, cert.cert, cert.key]);
  const { port } = await new Promise<{ port: number }>((r) => child.once('message', r as never));
  const seen: Record<string, number> = {};
  let started = 0;
  let done = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const one = (): void => {
      if (started >= total) return;
      started++;
      let out = '';
      const c = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      let ended = false;
      const end = (k: string): void => {
        if (ended) return;
        ended = true;
        seen[k] = (seen[k] ?? 0) + 1;
        if (++done === total) resolve();
        else one();
      };
      c.on('data', (d: Buffer) => (out += d.toString('latin1')));
      c.on('error', (e: NodeJS.ErrnoException) => end(e.code ?? 'error'));
      c.on('close', () => end(out.startsWith('HTTP/1.1 503') ? 'HTTP 503' : `closed: ${JSON.stringify(out.slice(0, 12))}`));
    };
    for (let i = 0; i < concurrency; i++) one();
  });
  const wall = performance.now() - t0;
  child.send('cpu');
  const { n, us } = await new Promise<{ n: number; us: number }>((r) => child.once('message', r as never));
  child.kill();
  return { method, perSecond: Math.round((total / wall) * 1000), cpuUsPerRefusal: Math.round(us / n), seen };
}

if (process.argv[2] === '--serve') serve(process.argv[3] as Method, process.argv[4]!, process.argv[5]!);
else {
  const total = Number(process.argv[2] ?? 3000);
  const cert = benchCert();
  try {
    for (const m of METHODS) process.stdout.write(JSON.stringify(await measure(m, cert, total, 16)) + '\n');
  } finally {
    rmSync(cert.dir, { recursive: true, force: true });
  }
}
