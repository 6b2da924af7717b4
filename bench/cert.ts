// A self-signed certificate for localhost and 127.0.0.1, made with openssl (EC P-256: quick to
// make and to use), for the HTTPS scenarios and the TLS tests.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

export function selfSignedCert(dir: string, name = 'cert'): { cert: string; key: string } {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}-key.pem`);
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=localhost/O=${name}`, '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
  return { cert, key };
}
