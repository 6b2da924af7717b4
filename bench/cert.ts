// A self-signed certificate for localhost and 127.0.0.1, made with openssl (EC P-256: quick to
// make and to use), for the HTTPS scenarios and the TLS tests.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

/** openssl's options for a new EC P-256 key, unencrypted. */
export const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** Runs openssl; throws with its stderr if it fails. */
export function openssl(...args: string[]): void {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
}

export function selfSignedCert(dir: string, name = 'cert'): { cert: string; key: string } {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}-key.pem`);
  openssl('req', '-x509', ...EC_KEY, '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=localhost/O=${name}`, '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1');
  return { cert, key };
}
