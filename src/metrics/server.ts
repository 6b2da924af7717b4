// GET /metrics on the primary (loopback by default, optional bearer token), and the /healthz and
// /readyz probes.
import { createServer, type Server } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { Registry } from 'prom-client';
import type { Logger } from '../log.js';
import { BindError } from '../endpoint/bind.js';

/** undefined when ready, else the reason it is not. */
export type ReadyCheck = () => string | undefined;

export function serveMetrics(host: string, port: number, token: string | undefined, scrape: () => Promise<string>, log: Logger, notReady: ReadyCheck = () => undefined): Promise<Server> {
  const expected = token === undefined ? undefined : Buffer.from(`Bearer ${token}`);
  const authorized = (header: string | undefined): boolean => {
    if (!expected) return true;
    const got = Buffer.from(header ?? '');
    return got.length === expected.length && timingSafeEqual(got, expected);
  };
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?', 1)[0];
    // Probes for load balancers and orchestrators: no token, they reveal nothing.
    if (path === '/healthz') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    if (path === '/readyz') {
      const why = notReady();
      return void res.writeHead(why === undefined ? 200 : 503, { 'content-type': 'text/plain' }).end(why === undefined ? 'ready\n' : `not ready: ${why}\n`);
    }
    if (path !== '/metrics') return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, { allow: 'GET, HEAD' }).end();
    if (!authorized(req.headers.authorization)) {
      return void res.writeHead(401, { 'www-authenticate': 'Bearer realm="metrics"', 'content-type': 'text/plain' }).end('unauthorized\n');
    }
    scrape().then(
      (body) => res.writeHead(200, { 'content-type': Registry.PROMETHEUS_CONTENT_TYPE }).end(body),
      (err: unknown) => {
        log.error({ err }, 'metrics scrape failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('scrape failed\n');
      },
    );
  });
  server.keepAliveTimeout = 65_000; // Prometheus keeps its scrape connection open
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const where = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
      reject(new BindError(`cannot bind metrics listener ${where}: ${err.code ?? err.message}${err.code === 'EADDRINUSE' ? ' (address already in use; set --metrics-port or --no-metrics)' : ''}`, err.code ?? 'ERROR'));
    });
    server.listen({ host, port }, () => resolve(server));
  });
}
