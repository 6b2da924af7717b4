// Samples the acceptor's /metrics and the target's memory while a load runs.
import { request } from 'node:http';
import { readdirSync, readFileSync } from 'node:fs';

export interface ServerCounters {
  accepted: number;
  rejected: Record<string, number>;
  errors: Record<string, number>;
  overflows: number | undefined;
  /** Connections a reload's old worker handed back (fdpass). */
  migrated: number;
}

export interface Samples {
  before: ServerCounters | undefined;
  after: ServerCounters | undefined;
  peakQueue: number | undefined;
  peakListenQueue: number | undefined;
  peakRssBytes: number | undefined;
  /** CPU seconds (user + system) the watched process used while sampling. */
  cpuSeconds: number | undefined;
  /** utime + stime over the run of the server's whole process tree (primary and workers). */
  serverCpuSeconds: number | undefined;
}

function fetchText(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/metrics', agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject).on('timeout', () => req.destroy(new Error('metrics timeout')));
    req.end();
  });
}

/**
 * `reloaded`: workers rolling reloads have replaced (each counted when its successor is ready; the
 * old one drains after); `workers`: how many are in each state.
 */
export function parse(text: string): { counters: ServerCounters; queue?: number; listenQueue?: number; reloaded: number; workers: Record<string, number> } {
  const rejected: Record<string, number> = {};
  const errors: Record<string, number> = {};
  let accepted = 0;
  let migrated = 0;
  let reloaded = 0;
  const workers: Record<string, number> = {};
  let overflows: number | undefined;
  let queue: number | undefined;
  let listenQueue: number | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-z_]+)(?:\{([^}]*)\})? (.+)$/.exec(line);
    if (!m) continue;
    const [, name, labels = '', v] = m;
    const value = Number(v);
    const reason = /reason="([^"]+)"/.exec(labels)?.[1] ?? '';
    if (name === 'acceptor_connections_accepted_total') accepted = value;
    else if (name === 'acceptor_connections_rejected_total') rejected[reason] = value;
    else if (name === 'acceptor_connection_errors_total') errors[reason] = value;
    else if (name === 'acceptor_listen_overflows_total') overflows = value;
    else if (name === 'acceptor_connections_migrated_total') migrated = value;
    else if (name === 'acceptor_worker_restarts_total' && reason === 'reload') reloaded = value;
    else if (name === 'acceptor_workers') workers[/state="([^"]+)"/.exec(labels)?.[1] ?? ''] = value;
    else if (name === 'acceptor_queue_depth') queue = value;
    else if (name === 'acceptor_listen_queue_depth') listenQueue = value;
  }
  return { counters: { accepted, rejected, errors, overflows, migrated }, reloaded, workers, ...(queue !== undefined ? { queue } : {}), ...(listenQueue !== undefined ? { listenQueue } : {}) };
}

function rss(pid: number): number | undefined {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined;
  }
}

const TICKS_PER_S = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in these

/** utime + stime of `pid`, in seconds. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / TICKS_PER_S;
  } catch {
    return undefined;
  }
}

/** `pid` and every process below it (workers; nginx's), by their parent pids in /proc. */
function tree(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'latin1');
      parent.set(Number(e), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) for (const [p, pp] of parent) if (pp === out[i]) out.push(p);
  return out;
}

/** utime + stime of `pid` and its descendants, by pid (a process that exits between two readings is not counted). */
function treeCpu(pid: number): Map<number, number> {
  const m = new Map<number, number>();
  for (const p of tree(pid)) {
    const s = cpuSeconds(p);
    if (s !== undefined) m.set(p, s);
  }
  return m;
}

/** Workers replaced by rolling reloads so far. */
export async function reloadedSoFar(metricsPort: number): Promise<number> {
  return parse(await fetchText(metricsPort)).reloaded;
}

/**
 * Waits, up to `ms`, until rolling reloads have replaced `since + expected` workers and none is
 * starting or draining (the old ones move their connections as they drain); resolves whether they had.
 */
export async function reloadsDone(metricsPort: number, since: number, expected: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const p = parse(await fetchText(metricsPort));
      if (p.reloaded - since >= expected && !p.workers.starting && !p.workers.draining) return true;
    } catch {
      // a scrape that failed: the next one decides
    }
    if (Date.now() >= deadline) return false;
    await new Promise((res) => setTimeout(res, 100));
  }
}

/** Starts sampling every `everyMs`; call the result to stop and get the samples. */
export async function sampler(metricsPort: number | undefined, pid: number, everyMs = 1000): Promise<() => Promise<Samples>> {
  const s: Samples = { before: undefined, after: undefined, peakQueue: undefined, peakListenQueue: undefined, peakRssBytes: rss(pid), cpuSeconds: undefined, serverCpuSeconds: undefined };
  const cpu0 = cpuSeconds(pid);
  const tree0 = treeCpu(pid);
  const max = (a: number | undefined, b: number | undefined): number | undefined => (b === undefined ? a : Math.max(a ?? 0, b));
  const take = async (): Promise<ServerCounters | undefined> => {
    s.peakRssBytes = max(s.peakRssBytes, rss(pid));
    if (metricsPort === undefined) return undefined;
    try {
      const p = parse(await fetchText(metricsPort));
      s.peakQueue = max(s.peakQueue, p.queue);
      s.peakListenQueue = max(s.peakListenQueue, p.listenQueue);
      return p.counters;
    } catch {
      return undefined;
    }
  };
  s.before = await take();
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void take().finally(() => (busy = false));
  }, everyMs);
  return async () => {
    clearInterval(timer);
    s.after = await take();
    const cpu1 = cpuSeconds(pid);
    s.cpuSeconds = cpu0 === undefined || cpu1 === undefined ? undefined : cpu1 - cpu0;
    let server = 0;
    for (const [p, c1] of treeCpu(pid)) server += c1 - (tree0.get(p) ?? 0);
    s.serverCpuSeconds = tree0.size === 0 ? undefined : server;
    return s;
  };
}
