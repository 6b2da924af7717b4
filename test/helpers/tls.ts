// TLS for tests: certificates made with Debian's openssl, and clients (node:tls raw requests,
// node:http2) that report what a TLS client sees.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { EC_KEY, openssl, selfSignedCert } from '../../bench/cert.js';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { connect as h2Connect } from 'node:http2';
import { X509Certificate } from 'node:crypto';
import { requestOn, type RawResponse } from './http.js';

// Every TLS test makes its certificates with openssl: skipped with the reason where it is missing,
// failed in CI, where .ci/run installs it.
export const skipOpenssl = spawnSync('openssl', ['version']).status === 0 || process.env.CI ? false : 'openssl not installed (apt-get install openssl); CI installs it';

export interface Cert {
  cert: string;
  key: string;
  /** The certificate's SHA-256 fingerprint, as a client sees it. */
  fingerprint: string;
  ca: Buffer;
}

/** A self-signed certificate for localhost and 127.0.0.1, with what a client needs to trust it. */
export function makeCert(dir: string, name = 'cert'): Cert {
  const { cert, key } = selfSignedCert(dir, name);
  const ca = readFileSync(cert);
  return { cert, key, ca, fingerprint: new X509Certificate(ca).fingerprint256 };
}

/**
 * A root CA, an intermediate CA it signs, and a leaf for localhost signed by the intermediate:
 * a client that trusts only the root verifies the leaf only if the server sends the intermediate.
 */
export function makeChain(dir: string): { root: Buffer; cert: string; key: string; intermediate: string } {
  const f = (n: string): string => join(dir, n);
  writeFileSync(f('ca.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n');
  writeFileSync(f('leaf.ext'), 'basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n');
  openssl('req', '-x509', ...EC_KEY, '-keyout', f('root-key.pem'), '-out', f('root.pem'), '-days', '2', '-subj', '/CN=test root', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  openssl('req', ...EC_KEY, '-keyout', f('int-key.pem'), '-out', f('int.csr'), '-subj', '/CN=test intermediate');
  openssl('x509', '-req', '-in', f('int.csr'), '-CA', f('root.pem'), '-CAkey', f('root-key.pem'), '-CAcreateserial', '-out', f('int.pem'), '-days', '2', '-extfile', f('ca.ext'));
  openssl('req', ...EC_KEY, '-keyout', f('leaf-key.pem'), '-out', f('leaf.csr'), '-subj', '/CN=localhost');
  openssl('x509', '-req', '-in', f('leaf.csr'), '-CA', f('int.pem'), '-CAkey', f('int-key.pem'), '-CAcreateserial', '-out', f('leaf.pem'), '-days', '2', '-extfile', f('leaf.ext'));
  return { root: readFileSync(f('root.pem')), cert: f('leaf.pem'), key: f('leaf-key.pem'), intermediate: f('int.pem') };
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
  const socket = tlsConnect({ port, host: '127.0.0.1', ca, servername: o.servername ?? 'localhost', ALPNProtocols: o.alpn ?? ['http/1.1'] });
  let fingerprint: string | undefined;
  let alpn: string | false | undefined;
  socket.once('secureConnect', () => {
    fingerprint = socket.getPeerX509Certificate()?.fingerprint256;
    alpn = socket.alpnProtocol ?? false;
  });
  const p = requestOn(socket, 'secureConnect', o.path ?? '/', 'localhost');
  return { socket, secure: p.connected, response: p.response.then((r) => ({ ...r, alpn, fingerprint })) };
}

/** One GET over HTTP/2 on a new connection. */
export function h2Get(port: number, ca: Buffer, path = '/'): Promise<{ status: number; body: string; alpn: string | undefined; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const session = h2Connect(`https://127.0.0.1:${port}`, { ca });
    session.on('error', reject);
    const req = session.request({ ':path': path });
    let body = '';
    let status = 0;
    let headers: Record<string, unknown> = {};
    req.setEncoding('utf8');
    req.on('response', (h) => ((headers = h), (status = Number(h[':status']))));
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      const alpn = session.alpnProtocol;
      session.close();
      resolve({ status, body, alpn, headers });
    });
    req.on('error', reject);
  });
}
