// TLS in a worker. Credentials (--tls-cert, --tls-key, --tls-ca) are read and checked file by
// file so that a bad one is named with its cause: the primary checks them at start and before
// each reload (a certificate rotated in place is picked up by the reload's new workers), and each
// worker reads them again when it starts. terminateTls() hands connections to a TLS server and
// accounts for their handshakes.
import { readFileSync } from 'node:fs';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { createSecureContext, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import type { Histogram } from 'prom-client';
import type { AcceptorOptions } from '../options.js';
import type { Logger } from '../log.js';
import { countOnce, type Counters } from '../metrics/counters.js';
import { clock } from '../clock.js';

export interface Credentials {
  /** The certificate, then the intermediates of --tls-ca. */
  cert: Buffer;
  key: Buffer;
  /** When the certificate expires (its notAfter). */
  validTo: string;
}

export class CredentialsError extends Error {}

function read(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new CredentialsError(`cannot load TLS ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The first line of an OpenSSL error, without its error-code prefix. */
// Stryker disable next-line StringLiteral,Regex: equivalent, `?? ''` is for the type only (split() always gives a first element), and the prefix is only ever at the start, so `^` decides nothing
const cause = (err: unknown): string => ((err as Error).message.split('\n', 1)[0] ?? '').replace(/^error:[0-9A-F]+:/, '');

export function loadCredentials(opts: Pick<AcceptorOptions, 'tlsCert' | 'tlsKey' | 'tlsCa'>): Credentials | undefined {
  if (opts.tlsCert === undefined || opts.tlsKey === undefined) return undefined;
  const certPem = read(opts.tlsCert, 'certificate');
  const key = read(opts.tlsKey, 'key');
  let validTo: string;
  try {
    validTo = new X509Certificate(certPem).validTo;
  } catch (err) {
    throw new CredentialsError(`cannot load TLS certificate ${opts.tlsCert}: ${cause(err)}`);
  }
  try {
    createPrivateKey(key);
  } catch (err) {
    throw new CredentialsError(`cannot load TLS key ${opts.tlsKey}: ${cause(err)}`);
  }
  let cert = certPem;
  if (opts.tlsCa !== undefined) {
    const ca = read(opts.tlsCa, 'intermediates');
    try {
      new X509Certificate(ca);
    } catch (err) {
      throw new CredentialsError(`cannot load TLS intermediates ${opts.tlsCa}: ${cause(err)}`);
    }
    cert = Buffer.concat([certPem, Buffer.from('\n'), ca]);
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new CredentialsError(`cannot use TLS key ${opts.tlsKey} with certificate ${opts.tlsCert}: ${cause(err)}`);
  }
  return { cert, key, validTo };
}

/** A socket error's reason: OpenSSL's (a failed or rejected handshake), else the client's. */
// Stryker disable next-line StringLiteral: equivalent, any other stand-in for a missing code lacks the prefix too
export const socketErrorReason = (err: NodeJS.ErrnoException): 'tls_handshake' | 'client_reset' => ((err.code ?? '').startsWith('ERR_SSL_') ? 'tls_handshake' : 'client_reset');

/**
 * The connection a TLS socket wraps: Node keeps it as `_parent` (Node 20–24; countOnce counts
 * there too). Where it does not, handshake times go unobserved. Read through an HTTP/2 session's
 * socket proxy too, while the session has its socket.
 */
export const parentOf = (s: object): Socket | undefined => (s as { _parent?: Socket })._parent ?? undefined;

/** The wrapped connection of each TLS socket, and back: metrics and drains work on the former. */
const wrapper = new WeakMap<Socket, TLSSocket>();

/** The TLS socket serving a connection, once its handshake is done. */
export const tlsSocketOf = (raw: Socket): TLSSocket | undefined => wrapper.get(raw);

/**
 * Makes `server` (https, http2 or tls) terminate TLS on connections given to the returned
 * function: handshake time observed, a failed handshake (a plain-text client, an unknown
 * protocol version, a client that gives up) counted once as `tls_handshake` and closed.
 */
export function terminateTls(server: TlsServer, counters: Counters, handshake: Histogram | undefined, log: Logger): (raw: Socket) => void {
  const started = new WeakMap<Socket, number>();
  server.on('secureConnection', (s: TLSSocket) => {
    const raw = parentOf(s);
    if (!raw) return;
    wrapper.set(raw, s);
    const t0 = started.get(raw);
    if (t0 !== undefined) handshake?.observe((clock() - t0) / 1000);
  });
  // Counted here at the failure, with OpenSSL's reason in the debug line.
  // Stryker disable next-line BlockStatement,StringLiteral: equivalent, Node destroys a socket whose handshake failed, and onRawClose below counts it then
  server.on('tlsClientError', (err: NodeJS.ErrnoException, s: TLSSocket) => {
    countOnce(counters, s, 'tls_handshake');
    // Stryker disable next-line ObjectLiteral,StringLiteral: a debug line no test reads
    log.debug({ code: err.code, reason: (err as { reason?: string }).reason }, 'tls handshake failed');
    s.destroy();
  });
  // A client that gives up mid-handshake (it rejected the certificate, or just closed) may cause
  // no error event at all: a connection closed before its handshake completed is a failed one.
  function onRawClose(this: Socket): void {
    if (!wrapper.has(this)) countOnce(counters, this, 'tls_handshake');
  }
  return (raw) => {
    started.set(raw, clock());
    raw.once('close', onRawClose);
    server.emit('connection', raw);
  };
}
