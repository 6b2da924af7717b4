// HTTP clients for tests: raw sockets (exact, one connection per request) and node:http.
import { connect, type Socket } from 'node:net';
import { request } from 'node:http';
import { connect as tlsConnect } from 'node:tls';
import { until } from './cli.js';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  raw: string;
  /** Milliseconds from connect to the end of the response. */
  ms: number;
}

/** Parses the first HTTP response in `raw`. */
export function parseResponse(raw: string, ms = 0): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, end < 0 ? raw.length : end).split('\r\n');
  const status = Number(/^HTTP\/1\.\d (\d{3})/.exec(head[0] ?? '')?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const h of head.slice(1)) {
    const i = h.indexOf(':');
    if (i > 0) headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
  }
  return { status, headers, body: end < 0 ? '' : raw.slice(end + 4), raw, ms };
}

export interface Pending {
  socket: Socket;
  /** Resolves when the server closes the connection, with whatever it sent (status 0 if nothing). */
  response: Promise<RawResponse & { error?: string }>;
  connected: Promise<void>;
}

/** A connection for hand-written bytes (from `localAddress`, if given): what it has received so far, and all of it once it closes. */
export function rawClient(port: number, host = '127.0.0.1', localAddress?: string): { s: Socket; data: () => string; closed: Promise<{ data: string; ms: number }> } {
  const t0 = Date.now();
  const s = connect({ port, host, ...(localAddress ? { localAddress } : {}) });
  let data = '';
  s.setEncoding('latin1').on('data', (d: string) => (data += d));
  s.on('error', () => {});
  return { s, data: () => data, closed: new Promise((r) => s.on('close', () => r({ data, ms: Date.now() - t0 }))) };
}

/** Opens one connection and sends one request with `Connection: close`. */
export function rawRequest(port: number, path = '/', host = '127.0.0.1', extra = ''): Pending {
  return requestOn(connect({ port, host }), 'connect', path, host, extra);
}

/** Sends one request with `Connection: close` on a connection being opened; `connected` resolves on `ready`, the response on close. */
export function requestOn<S extends Socket>(socket: S, ready: 'connect' | 'secureConnect', path: string, host: string, extra = ''): Pending & { socket: S } {
  const t0 = Date.now();
  let data = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (data += d));
  const connected = new Promise<void>((resolve, reject) => {
    socket.once(ready, resolve);
    socket.once('error', reject);
  });
  connected.catch(() => {});
  const send = (): void => void socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n${extra}\r\n`);
  // Plain: written at once (node:net sends it on connect). TLS: after the handshake, so a client
  // refused before it reads the server's alert, not a failed write (EPROTO).
  if (ready === 'connect') send();
  else socket.once(ready, send);
  const response = new Promise<RawResponse & { error?: string }>((resolve) => {
    let error: string | undefined;
    socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    socket.on('close', () => resolve({ ...parseResponse(data, Date.now() - t0), ...(error ? { error } : {}) }));
  });
  return { socket, response, connected };
}

/** One request through node:http with a fresh connection. */
export function get(port: number, path = '/', host = '127.0.0.1', headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  return send(port, 'GET', path, undefined, headers, host);
}

/** One request with `body` (if any) through node:http, on a fresh connection closed after it. */
export function send(port: number, method: string, path: string, body?: string, headers: Record<string, string> = {}, host = '127.0.0.1'): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, method, agent: false, headers: { connection: 'close', ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('client timeout')));
    req.end(body);
  });
}

/** Sends `count` sequential requests; returns the statuses (0 + error code for a failed one). */
export async function loop(port: number, until: () => boolean, path = '/', onOk?: () => void): Promise<{ ok: number; failed: string[] }> {
  let ok = 0;
  const failed: string[] = [];
  while (!until()) {
    try {
      const r = await get(port, path);
      if (r.status === 200) (ok++, onOk?.());
      else failed.push(String(r.status));
    } catch (e) {
      failed.push((e as NodeJS.ErrnoException).code ?? (e as Error).message);
    }
  }
  return { ok, failed };
}

/**
 * Request loops on `port` around `during`: starts `loops` of them, waits until `settle` requests
 * were served, runs `during`, waits for `settle` more, then stops them. Returns each loop's result.
 */
export async function underLoad(port: number, loops: number, during: () => Promise<void>, settle = 20): Promise<{ ok: number; failed: string[] }[]> {
  let done = false;
  let served = 0;
  const running = Array.from({ length: loops }, () => loop(port, () => done, '/', () => served++));
  await until(() => served >= settle);
  await during();
  const mark = served;
  await until(() => served >= mark + settle);
  done = true;
  return Promise.all(running);
}

/**
 * Keep-alive clients as pools and browsers are: each sends its next request on the same
 * connection as soon as the answer is read, and opens a new connection only when the server said
 * `Connection: close` (or closed it after an answer). A request whose connection fails before its
 * answer is a failure, as a client sees it. Runs until `stop()` is true.
 */
export async function keepAliveClients(port: number, n: number, stop: () => boolean, o: { tls?: true } = {}): Promise<{ ok: number; failed: string[]; connects: number; toldClose: number }> {
  const r = { ok: 0, failed: [] as string[], connects: 0, toldClose: 0 };
  const one = async (): Promise<void> => {
    while (!stop()) {
      r.connects++;
      const socket = o.tls ? tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false }) : connect({ port, host: '127.0.0.1' });
      socket.setEncoding('latin1');
      let buf = '';
      let wake: (() => void) | undefined;
      let ended: string | undefined;
      socket.on('data', (d: string) => ((buf += d), wake?.()));
      socket.on('error', (e: NodeJS.ErrnoException) => ((ended ??= e.code ?? e.message), wake?.()));
      socket.on('close', () => ((ended ??= 'closed'), wake?.()));
      const next = (): Promise<void> => new Promise((resolve) => (wake = resolve));
      for (let again = true; again && !stop(); ) {
        socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
        // One whole answer: its headers, then Content-Length bytes of body.
        for (;;) {
          const head = buf.indexOf('\r\n\r\n');
          const length = head < 0 ? -1 : Number(/\r\ncontent-length: *(\d+)/i.exec(buf.slice(0, head))?.[1] ?? 0);
          if (head >= 0 && buf.length >= head + 4 + length) {
            const headers = buf.slice(0, head);
            buf = buf.slice(head + 4 + length);
            if (headers.startsWith('HTTP/1.1 200')) r.ok++;
            else r.failed.push(headers.split('\r\n')[0]!);
            if (/\r\nconnection: *close/i.test(headers)) (r.toldClose++, (again = false));
            break;
          }
          if (ended !== undefined) {
            r.failed.push(ended);
            again = false;
            break;
          }
          await next();
        }
      }
      socket.end();
    }
  };
  await Promise.all(Array.from({ length: n }, one));
  return r;
}
