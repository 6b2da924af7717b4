// Runs the real `acceptor` CLI (dist) as a child process and reads its JSON log lines.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { TCP_LISTEN } from '../../src/metrics/kernel.js';
import { timeout } from '../../src/handler/load.js';

export const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
export const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));

export type LogLine = Record<string, unknown> & { msg?: string; worker?: number; level?: number };

export interface Running {
  proc: ChildProcess;
  tag: string;
  lines: LogLine[];
  stderr: () => string;
  port: number;
  metricsPort: number;
  /** Resolves with the first log line (seen or to come) that matches, or rejects after ms. */
  waitFor(pred: (l: LogLine) => boolean, ms?: number, after?: number): Promise<LogLine>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface StartOptions {
  env?: Record<string, string>;
  /** Wait for "acceptor ready" (default) or only for "listening". */
  wait?: 'ready' | 'listening' | 'none';
  uid?: number;
  gid?: number;
  /** Node binary to run (default: this one). */
  node?: string;
  /** In a process group of its own, as a shell job or a systemd unit: signal it with `-pid`. */
  group?: boolean;
  /** A command that runs node, e.g. `['systemd-socket-activate', '-l', '8080']`. */
  wrap?: string[];
  /** Leave --host unset (all interfaces, the default being tested); otherwise loopback. */
  anyHost?: true;
}

// Loopback unless a test says otherwise (a later --host wins).
const DEFAULT_ARGS = ['--port', '0', '--metrics-port', '0', '--workers', '2', '--log-level', 'info'];
const LOOPBACK = ['--host', '127.0.0.1'];

/**
 * Kills `pid` (and its group, if it leads one) once this test process is gone, however it ended:
 * tap's timeout kills a test file with SIGKILL, and an acceptor it started would serve on.
 */
function reapWithUs(pid: number): void {
  const script = `while kill -0 ${pid} 2>/dev/null; do kill -0 ${process.pid} 2>/dev/null || { kill -9 -${pid} ${pid} 2>/dev/null; exit 0; }; sleep 0.5; done`;
  spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' }).unref();
}

/** Calls `onLine` with each line of `stream`, parsed as JSON where it is (else `{ msg, raw: true }`). */
export function readLines(stream: Readable, onLine: (line: LogLine) => void): void {
  let buf = '';
  stream.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    for (let i; (i = buf.indexOf('\n')) >= 0; ) {
      const raw = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let line: LogLine;
      try {
        line = JSON.parse(raw) as LogLine;
      } catch {
        line = { msg: raw, raw: true };
      }
      onLine(line);
    }
  });
}

export function run(args: string[], o: StartOptions = {}): Running & { started: Promise<void> } {
  const tag = randomUUID();
  const env: NodeJS.ProcessEnv = { ...process.env, ...o.env, ACCEPTOR_TEST_TAG: tag };
  const argv = [CLI, ...DEFAULT_ARGS, ...(o.anyHost ? [] : LOOPBACK), ...args];
  // Another user cannot write tap's coverage files, and tap instruments every node it sees
  // spawned: run that one through `env -i`, uninstrumented.
  const node = o.node ?? process.execPath;
  // A mutation run's active mutant is passed on all the same, or such a run would test unmutated code.
  const mutant = process.env.__STRYKER_ACTIVE_MUTANT__ === undefined ? [] : [`__STRYKER_ACTIVE_MUTANT__=${process.env.__STRYKER_ACTIVE_MUTANT__}`];
  const [cmd, cmdArgs] = o.uid === undefined ? [node, argv] : ['/usr/bin/env', ['-i', `PATH=${process.env.PATH}`, `ACCEPTOR_TEST_TAG=${tag}`, ...mutant, node, ...argv]];
  const [bin, binArgs] = o.wrap ? [o.wrap[0]!, [...o.wrap.slice(1), cmd, ...cmdArgs]] : [cmd, cmdArgs];
  const proc = spawn(bin, binArgs, {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: o.group === true,
    ...(o.uid !== undefined ? { uid: o.uid, gid: o.gid } : {}),
  });
  reapWithUs(proc.pid!);
  const lines: LogLine[] = [];
  const waiters = new Set<{ pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }>();
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  readLines(proc.stdout!, (line) => {
    lines.push(line);
    for (const w of waiters) if (w.pred(line)) (waiters.delete(w), w.resolve(line));
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const r: Running & { started: Promise<void> } = {
    proc,
    tag,
    lines,
    stderr: () => err,
    port: 0,
    metricsPort: 0,
    waitFor(pred, ms = 15_000, after = 0) {
      const seen = lines.slice(after).find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const w = { pred, resolve };
        waiters.add(w);
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`no matching log line within ${ms}ms; stderr: ${err}; last lines: ${lines.slice(-5).map((l) => JSON.stringify(l)).join('\n')}`));
        }, ms);
        void exited.then(() => setTimeout(() => {
          if (waiters.delete(w)) (clearTimeout(timer), reject(new Error(`process exited before the log line; stderr: ${err}`)));
        }, 50));
        const orig = w.resolve;
        w.resolve = (l) => (clearTimeout(timer), orig(l));
      });
    },
    exited,
    stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
    started: Promise.resolve(),
  };
  const wait = o.wait ?? 'ready';
  if (wait !== 'none') {
    r.started = (async () => {
      const l = await r.waitFor((x) => x.msg === 'listening');
      r.port = Number(l.port);
      if (wait === 'ready') await r.waitFor((x) => x.msg === 'acceptor ready');
      const m = lines.find((x) => x.msg === 'metrics listening');
      if (m) r.metricsPort = Number(m.port);
    })();
  }
  return r;
}

/** Starts the CLI and waits until it is ready. */
export async function start(args: string[], o: StartOptions = {}): Promise<Running> {
  const r = run(args, o);
  await r.started;
  return r;
}

/** Pids of processes (still alive) that carry this run's tag: the CLI's workers and itself. */
export function tagged(tag: string): number[] {
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/environ`, 'latin1').includes(`ACCEPTOR_TEST_TAG=${tag}`)) {
        const stat = readFileSync(`/proc/${d}/stat`, 'latin1');
        if (!/\) Z /.test(stat)) pids.push(Number(d));
      }
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

export const workerPids = (r: Running): number[] => tagged(r.tag).filter((p) => p !== r.proc.pid);

/** SIGHUP, and resolves once the rolling reload is done. */
export async function reload(acc: Running): Promise<void> {
  const mark = acc.lines.length;
  acc.proc.kill('SIGHUP');
  await acc.waitFor((l) => l.msg === 'reload done', 20_000, mark);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * `p`, or a failure that names `what` after `ms`: a step that never settles (a client event that
 * never comes) fails as itself, with the acceptor's last log lines, not as the whole file's timeout.
 */
export function within<T>(p: Promise<T>, what: string, acc?: Running, ms = 15_000): Promise<T> {
  return timeout(p, ms, () => new Error(`${what}: not within ${ms}ms${acc ? `; last log lines:\n${acc.lines.slice(-8).map((l) => JSON.stringify(l)).join('\n')}` : ''}`));
}

/** Polls `fn` until it returns truthy or `ms` passes. */
export async function until<T>(fn: () => T | Promise<T>, ms = 10_000, every = 25): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`condition not met within ${ms}ms`);
    await sleep(every);
  }
}

/** The contents of `path` once a fixture has written it (a pid file, a marker). */
export const fileWhenWritten = (path: string, ms?: number): Promise<string> =>
  until(() => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return '';
    }
  }, ms);

/**
 * Runs the acceptor under Debian's systemd-socket-activate, listening on 127.0.0.1:port (for
 * run()'s `wrap`). It passes on only the variables named with -E: every one of the test's own is,
 * so that tap's coverage loaders and a mutation run's active mutant (__STRYKER_ACTIVE_MUTANT__)
 * reach the acceptor as they reach every other child, and the run's tag.
 */
export const socketActivate = (port: number): string[] => ['systemd-socket-activate', '-l', `127.0.0.1:${port}`, ...[...Object.keys(process.env), 'ACCEPTOR_TEST_TAG'].flatMap((k) => ['-E', k])];

/** Both hand-off transports: the exact-admission tests run against each. */
export const TRANSPORTS = ['fdpass', 'ipc'] as const;

/**
 * The listening TCP sockets on `port` that process `pid` holds, by inode: its descriptors' socket
 * inodes against the LISTEN entries of /proc/net/tcp and tcp6. The same inode in two processes is
 * one socket passed on (shared); different inodes are separate sockets (reuseport).
 */
export function listeningSockets(pid: number, port: number): string[] {
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === TCP_LISTEN && parseInt(f[1]!.split(':')[1]!, 16) === port) inodes.add(f[9]!);
    }
  }
  const held = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
      if (inode && inodes.has(inode)) held.add(inode);
    } catch {
      // closed since the listing
    }
  }
  return [...held];
}

/** Whether process `pid` holds a listening TCP socket on `port`. */
export const listensOn = (pid: number, port: number): boolean => listeningSockets(pid, port).length > 0;

/** Open descriptors of a process now. */
export const openFds = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

/**
 * A free loopback port below the kernel's ephemeral range (ip_local_port_range): a port from
 * listen(0) is in that range, where after a storm client ports sit in TIME_WAIT and a later bind
 * of the same number can fail.
 */
export async function freeFixedPort(): Promise<number> {
  const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number) as [number];
  const { createServer } = await import('node:net');
  for (;;) {
    const port = 10_000 + Math.floor(Math.random() * (low - 10_000));
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer().once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
}

/**
 * One worker whose handler loaded, then stops loading (a bad deploy after a good start): the
 * worker is killed, and every replacement fails at load, with backoff. Returns the acceptor and
 * the log index from the kill on.
 */
export async function startThenBreakHandler(dir: string, args: string[] = []): Promise<{ acc: Running; mark: number }> {
  const marker = `${dir}/broken`;
  const acc = await start(['--workers', '1', '--handler', fixture('throws-if-marker.mjs'), ...args], { env: { MARKER: marker } });
  writeFileSync(marker, '');
  const mark = acc.lines.length;
  process.kill(workerPids(acc)[0]!, 'SIGKILL');
  return { acc, mark };
}
