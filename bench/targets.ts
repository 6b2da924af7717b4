// What the benchmark runs against: the acceptor with each strategy, and the baselines.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './root.js';
import { selfSignedCert } from './cert.js';

export const CLI = join(ROOT, 'dist/src/cli.js');
export const handlerPath = (name: 'hello' | 'cpu'): string => join(ROOT, `bench/handlers/${name}.mjs`);

export interface TargetSpec {
  /** Shown in tables: `handoff`, `round-robin`, `handoff (metrics off)`, `node:http`, `cluster rr`, `nginx`. */
  name: string;
  kind: 'acceptor' | 'single' | 'cluster-rr' | 'nginx' | 'haproxy';
  strategy?: string;
  metrics?: boolean;
  /** handoff's transport, where not the default (auto). */
  transport?: 'ipc' | 'fdpass';
  /** More acceptor options (`--queue fifo`). */
  args?: string[];
  /** A per-client connection limit: the acceptor's, nginx's limit_conn, HAProxy's src_conn_cur. */
  limitPerClient?: number;
}

export interface Setup {
  workers: number;
  backlog: number;
  maxConnections: number;
  handler: 'hello' | 'cpu';
  cpuMs: number;
  /** Serve HTTPS with this certificate (EC P-256, made by the bench). */
  tls?: { cert: string; key: string };
  /** A real app (--app) served in place of the handler: it listens on process.env.PORT. */
  app?: string;
}

/** A self-signed certificate for the HTTPS scenarios, in a fresh directory. */
export function benchCert(): { cert: string; key: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'acceptor-bench-tls-'));
  return { ...selfSignedCert(dir), dir };
}

export interface Running {
  port: number;
  metricsPort: number | undefined;
  /** The process to watch for memory: the acceptor's primary, nginx's master, the baseline's primary. */
  pid: number;
  stop(): Promise<void>;
}

function waitLine(proc: ChildProcess, match: (l: Record<string, unknown>) => boolean, ms = 15_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no start-up line within ${ms}ms`)), ms);
    const onData = (d: Buffer): void => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const raw = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          const l = JSON.parse(raw) as Record<string, unknown>;
          if (match(l)) {
            clearTimeout(timer);
            resolve(l);
          }
        } catch {
          // not a log line
        }
      }
    };
    proc.stdout!.on('data', onData);
    proc.once('exit', (code) => reject(new Error(`exited with ${code} before it was ready`)));
  });
}

function stopper(proc: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
      const kill = setTimeout(() => proc.kill('SIGKILL'), 5000);
      proc.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      proc.kill('SIGTERM');
    });
}

async function startAcceptor(t: TargetSpec, s: Setup): Promise<Running> {
  const args = [CLI, '--host', '127.0.0.1', '--port', '0', '--metrics-port', '0', '--workers', String(s.workers), '--strategy', t.strategy!, '--backlog', String(s.backlog), '--max-connections', String(s.maxConnections), '--handler', s.app ?? handlerPath(s.handler), '--drain-timeout', '2s'];
  if (t.metrics === false) args.push('--no-metrics');
  if (t.transport) args.push('--transport', t.transport);
  if (t.args) args.push(...t.args);
  if (t.limitPerClient) args.push('--max-connections-per-client', String(t.limitPerClient));
  if (s.tls) args.push('--tls-cert', s.tls.cert, '--tls-key', s.tls.key);
  const proc = spawn(process.execPath, args, { env: { ...process.env, CPU_MS: String(s.cpuMs) }, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: Record<string, unknown>[] = [];
  proc.stdout!.on('data', (d: Buffer) => {
    for (const raw of d.toString().split('\n')) {
      try {
        lines.push(JSON.parse(raw) as Record<string, unknown>);
      } catch {
        // partial line
      }
    }
  });
  await waitLine(proc, (l) => l.msg === 'acceptor ready');
  const port = Number(lines.find((l) => l.msg === 'listening')?.port);
  const m = lines.find((l) => l.msg === 'metrics listening');
  return { port, metricsPort: m ? Number(m.port) : undefined, pid: proc.pid!, stop: stopper(proc) };
}

async function startBaseline(file: string, s: Setup): Promise<Running> {
  const proc = spawn(process.execPath, [join(ROOT, 'bench/baselines', file)], {
    env: { ...process.env, HANDLER: handlerPath(s.handler), CPU_MS: String(s.cpuMs), WORKERS: String(s.workers), BACKLOG: String(s.backlog), PORT: '0', HOST: '127.0.0.1', ...(s.app ? { APP: s.app } : {}), ...(s.tls ? { TLS_CERT: s.tls.cert, TLS_KEY: s.tls.key } : {}) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const l = await waitLine(proc, (x) => x.msg === 'listening');
  return { port: Number(l.port), metricsPort: undefined, pid: proc.pid!, stop: stopper(proc) };
}

/** The app (--app) as `node app.js` would run it: one process, listening on PORT. */
async function startApp(app: string): Promise<Running> {
  const port = await freePort();
  const proc = spawn(process.execPath, [app], { env: { ...process.env, PORT: String(port), HOST: '127.0.0.1' }, stdio: ['ignore', 'ignore', 'inherit'] });
  await untilConnects(port, proc, () => 'the app did not listen on PORT');
  return { port, metricsPort: undefined, pid: proc.pid!, stop: stopper(proc) };
}

/** Resolves once `port` takes a connection; throws `why()` after 10 s or if `proc` exits. */
async function untilConnects(port: number, proc: ChildProcess, why: () => string): Promise<void> {
  const end = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const c = connect(port, '127.0.0.1', () => (c.destroy(), r(true))).on('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > end || proc.exitCode !== null) throw new Error(why());
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The nginx binary, or why there is none. */
export function findNginx(explicit?: string): { path: string } | { missing: string } {
  const candidates = explicit ? [explicit] : ['nginx', '/usr/sbin/nginx'];
  for (const c of candidates) {
    const r = spawnSync(c, ['-v'], { encoding: 'utf8' });
    if (r.status === 0) return { path: c };
  }
  return { missing: explicit ? `no nginx at ${explicit}` : 'nginx is not installed (apt-get install nginx-light)' };
}

/** A loopback port nothing listens on now. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function startNginx(bin: string, s: Setup, limitPerClient?: number): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), 'acceptor-bench-nginx-'));
  const port = await freePort();
  // The same answer as the hello handler; worker_processes = the acceptor's workers.
  writeFileSync(
    join(dir, 'nginx.conf'),
    `daemon off; master_process on; worker_processes ${s.workers}; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn;
events { worker_connections 8192; }
http {
  access_log off; client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  keepalive_requests 1000000;
  ${limitPerClient ? 'limit_conn_zone $binary_remote_addr zone=addr:10m; limit_conn_status 503;' : ''}
  server {
    listen 127.0.0.1:${port}${s.tls ? ' ssl' : ''} backlog=${s.backlog};
    ${limitPerClient ? `limit_conn addr ${limitPerClient};` : ''}
    ${s.tls ? `ssl_certificate ${s.tls.cert}; ssl_certificate_key ${s.tls.key}; ssl_session_cache off; ssl_session_tickets off;` : ''}
    location / { default_type text/plain; return 200 "ok\\n"; }
  }
}
`,
  );
  const proc = spawn(bin, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'inherit'] });
  await untilConnects(port, proc, () => `nginx did not start: ${readFileSync(join(dir, 'error.log'), 'utf8')}`);
  const stop = stopper(proc);
  return {
    port,
    metricsPort: undefined,
    pid: proc.pid!,
    stop: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The HAProxy binary, or why there is none. */
export function findHaproxy(): { path: string } | { missing: string } {
  for (const c of ['haproxy', '/usr/sbin/haproxy']) if (spawnSync(c, ['-v'], { encoding: 'utf8' }).status === 0) return { path: c };
  return { missing: 'haproxy is not installed (apt-get install haproxy)' };
}

/**
 * HAProxy in front of cluster rr, limiting connections per source address as its documentation
 * does: a stick table tracking each source's current connections, and connections over the limit
 * rejected at accept (`tcp-request connection reject`: closed, no answer).
 */
async function startHaproxy(bin: string, s: Setup, limit: number): Promise<Running> {
  const backend = await startBaseline('cluster-rr.mjs', s);
  const dir = mkdtempSync(join(tmpdir(), 'acceptor-bench-haproxy-'));
  const port = await freePort();
  writeFileSync(
    join(dir, 'haproxy.cfg'),
    `global
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind 127.0.0.1:${port}
  stick-table type ip size 100k expire 30s store conn_cur
  tcp-request connection track-sc0 src
  tcp-request connection reject if { sc0_conn_cur gt ${limit} }
  default_backend be
backend be
  server s1 127.0.0.1:${backend.port}
`,
  );
  const proc = spawn(bin, ['-f', join(dir, 'haproxy.cfg'), '-db'], { stdio: ['ignore', 'ignore', 'inherit'] });
  const stop = stopper(proc);
  try {
    await untilConnects(port, proc, () => 'haproxy did not start');
  } catch (err) {
    await stop();
    await backend.stop();
    throw err;
  }
  return {
    port,
    metricsPort: undefined,
    pid: proc.pid!,
    stop: async () => {
      await stop();
      await backend.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function startTarget(t: TargetSpec, s: Setup, nginx?: string): Promise<Running> {
  if (t.kind === 'acceptor') return startAcceptor(t, s);
  if (t.kind === 'single') return s.app ? startApp(s.app) : startBaseline('single.mjs', s);
  if (t.kind === 'cluster-rr') return startBaseline('cluster-rr.mjs', s);
  if (t.kind === 'haproxy') return startHaproxy((findHaproxy() as { path: string }).path, s, t.limitPerClient ?? 20);
  return startNginx(nginx!, s, t.limitPerClient);
}
