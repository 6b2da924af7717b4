// TLS for tests: certificates made with Debian's openssl, and clients (node:tls raw requests,
// node:http2) that report what a TLS client sees.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { connect as h2Connect } from 'node:http2';
import { X509Certificate } from 'node:crypto';
import { parseResponse, type RawResponse } from './http.js';

export interface Cert {
  cert: string;
  key: string;
  /** The certificate's SHA-256 fingerprint, as a client sees it. */
  fingerprint: string;
  ca: Buffer;
}

/** A self-signed certificate for localhost and 127.0.0.1 (EC P-256: quick to make and to use). */
export function makeCert(dir: string, name = 'cert'): Cert {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}-key.pem`);
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=localhost/O=${name}`, '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
  const ca = readFileSync(cert);
  return { cert, key, ca, fingerprint: new X509Certificate(ca).fingerprint256 };
}

export interface TlsResult extends RawResponse {
  /** The client's error code (ERR_SSL_TLSV1_ALERT_INTERNAL_ERROR, ECONNRESET…), if it failed. */
  error?: string;
  alpn?: string | false;
  fingerprint?: string;
}

export interface TlsPending {
  socket: TLSSocket;
  /** The handshake is done. */
  secure: Promise<void>;
  response: Promise<TlsResult>;
}

/** One HTTP/1.1 request with `Connection: close` over a new TLS connection. */
export function tlsRequest(port: number, ca: Buffer, o: { path?: string; servername?: string; alpn?: string[] } = {}): TlsPending {
  const t0 = Date.now();
  const socket = tlsConnect({ port, host: '127.0.0.1', ca, servername: o.servername ?? 'localhost', ALPNProtocols: o.alpn ?? ['http/1.1'] });
  let data = '';
  let fingerprint: string | undefined;
  let alpn: string | false | undefined;
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (data += d));
  const secure = new Promise<void>((resolve) =>
    socket.once('secureConnect', () => {
      fingerprint = socket.getPeerX509Certificate()?.fingerprint256;
      alpn = socket.alpnProtocol ?? false;
      socket.write(`GET ${o.path ?? '/'} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
      resolve();
    }),
  );
  const response = new Promise<TlsResult>((resolve) => {
    let error: string | undefined;
    socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    socket.on('close', () => resolve({ ...parseResponse(data, Date.now() - t0), ...(error ? { error } : {}), alpn, fingerprint }));
  });
  return { socket, secure, response };
}

/** One GET over HTTP/2 on a new connection. */
export function h2Get(port: number, ca: Buffer, path = '/'): Promise<{ status: number; body: string; alpn: string | undefined }> {
  return new Promise((resolve, reject) => {
    const session = h2Connect(`https://127.0.0.1:${port}`, { ca });
    session.on('error', reject);
    const req = session.request({ ':path': path });
    let body = '';
    let status = 0;
    req.setEncoding('utf8');
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      const alpn = session.alpnProtocol;
      session.close();
      resolve({ status, body, alpn });
    });
    req.on('error', reject);
  });
}
