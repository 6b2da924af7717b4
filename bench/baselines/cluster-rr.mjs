// Baseline: plain node:cluster, round-robin (Node's default on Linux), WORKERS workers, same handler;
// or, with APP, that app itself, unchanged: each worker imports it and it listens on PORT.
import cluster from 'node:cluster';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

cluster.schedulingPolicy = cluster.SCHED_RR;
if (cluster.isPrimary) {
  const n = Number(process.env.WORKERS ?? 2);
  let ready = 0;
  for (let i = 0; i < n; i++) cluster.fork();
  cluster.on('listening', (_w, addr) => {
    if (++ready === n) process.stdout.write(JSON.stringify({ msg: 'listening', port: addr.port }) + '\n');
  });
  // SIGHUP: the workers replaced one by one, as PM2's reload does: a new one listening, then the
  // old one disconnected (its server closes, and node:http closes its idle keep-alive connections).
  let reloading = false;
  process.on('SIGHUP', async () => {
    if (reloading) return;
    reloading = true;
    for (const old of Object.values(cluster.workers)) {
      const fresh = cluster.fork();
      await new Promise((r) => fresh.once('listening', r));
      old.disconnect();
    }
    reloading = false;
  });
  process.on('SIGTERM', () => {
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGKILL');
    process.exit(0);
  });
} else if (process.env.APP) {
  await import(pathToFileURL(process.env.APP).href);
} else {
  const handler = (await import(pathToFileURL(process.env.HANDLER).href)).default;
  // HTTPS (the bench's TLS scenarios) when TLS_CERT and TLS_KEY are set.
  const tls = process.env.TLS_CERT ? { cert: readFileSync(process.env.TLS_CERT), key: readFileSync(process.env.TLS_KEY) } : undefined;
  (tls ? createHttpsServer(tls, handler) : createServer(handler)).listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0), backlog: Number(process.env.BACKLOG ?? 511) });
}
