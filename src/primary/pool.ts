// The worker processes: fork, readiness, replacement with backoff, heartbeat watchdog,
// rolling reload and drain. Workers are known by a stable slot (1..N): the `worker` label.
import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../log.js';
import type { AcceptorOptions } from '../options.js';
import type { Counters, RestartReason } from '../metrics/counters.js';
import type { ForkLink } from '../dispatch/transport.js';
import type { WorkerRecord } from '../dispatch/workers.js';
import { HEARTBEAT_MS, STALL_MS, type FromWorker, type WorkerConfig } from '../worker/protocol.js';

export type { WorkerRecord, WorkerState } from '../dispatch/workers.js';

export interface PoolHooks {
  ready(rec: WorkerRecord): void;
  /**
   * Silent for STALL_MS: it gets no new connections until it beats again; or stalled for
   * --stall-timeout: connections stop waiting for it.
   */
  stalled(rec: WorkerRecord): void;
  exit(rec: WorkerRecord): void;
  message(rec: WorkerRecord, msg: FromWorker): void;
  /** A descriptor for the next worker to inherit as fd 4 (the fdpass channel), if any. */
  link?(): ForkLink | undefined;
  /** Whether a draining worker's idle connections can go to another worker (fdpass); from now on they are heard. */
  movable?(rec: WorkerRecord): boolean;
  /** The handler cannot load and no worker has ever been ready: the start has failed. */
  failed?(error: string): void;
  /** A worker's counters, from its heartbeat (metrics/totals.ts). */
  counts?(rec: WorkerRecord, counts: number[]): void;
}

const BACKOFF_BASE_MS = 100;
/** A worker that was ready this long proves the slot healthy again: its backoff resets. */
const HEALTHY_AFTER_MS = 10_000;

export class Pool {
  readonly records = new Set<WorkerRecord>();
  /** Ready workers, in slot order: what the dispatcher scans. */
  ready: WorkerRecord[] = [];
  private failures = new Map<number, number>();
  /** Per slot, a replacement waiting out its crash backoff (one at most: it is set when the slot's worker dies). */
  private pending = new Map<number, NodeJS.Timeout>();
  private watchdogTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  /** Each draining worker's drain: what its exit resolves, and whether it had to be killed. */
  private drains = new Map<WorkerRecord, { exited: () => void; killed: Promise<boolean> }>();
  private allReady: (() => void) | undefined;
  /** A worker has been ready at least once: from then on, load failures back off instead. */
  private everReady = false;

  constructor(
    private readonly opts: AcceptorOptions,
    private readonly config: Omit<WorkerConfig, 'slot'>,
    private readonly counters: Counters,
    private readonly log: Logger,
    private readonly hooks: PoolHooks,
  ) {
    cluster.setupPrimary({
      exec: fileURLToPath(new URL('../worker/main.js', import.meta.url)),
      // The worker reads its config from the environment, never argv.
      // Stryker disable next-line ArrayDeclaration: equivalent, the worker reads no argv
      args: [],
      // Inherited stdout/stderr: the workers' log lines are the primary's. (A `stdio` given at
      // fork overrides this; only ipc and the strategies where workers accept depend on it.)
      silent: false,
    });
    cluster.on('message', this.onMessage);
    cluster.on('exit', this.onExit);
  }

  /**
   * Workers that can take connections now or soon: ready, starting, or stalled for less than
   * --stall-timeout (a CPU burst: it beats again soon). 0 during a crash backoff and when every
   * worker has been stalled that long: then waiting is pointless and clients are told busy.
   */
  get responsive(): number {
    let n = 0;
    for (const r of this.records) if (r.state === 'ready' || r.state === 'starting' || (r.state === 'stalled' && !r.stallExpired)) n++;
    return n;
  }

  /**
   * Forks every slot. Resolves once all have been ready at least once; a slot whose worker
   * keeps failing at start-up keeps being retried with backoff, so this may never resolve.
   */
  start(): Promise<void> {
    for (let slot = 1; slot <= this.opts.workers; slot++) this.fork(slot).catch(() => {});
    this.watchdogTimer = setInterval(this.checkHeartbeats, HEARTBEAT_MS);
    this.watchdogTimer.unref();
    return new Promise((resolve) => {
      this.allReady = resolve;
    });
  }

  /** Forks a worker for `slot`; resolves when it says ready, rejects if it exits first. */
  fork(slot: number, candidate = false): Promise<WorkerRecord> {
    const link = this.hooks.link?.();
    // Settings are read at fork time: this worker's own channel, if the transport has one.
    cluster.setupPrimary({ stdio: link ? [0, 1, 2, 'ipc', link.fd] : undefined });
    // PORT and HOST: an app's `listen(process.env.PORT)` lands on the acceptor's endpoint.
    const worker = cluster.fork({ ACCEPTOR_WORKER_CONFIG: JSON.stringify({ ...this.config, slot } satisfies WorkerConfig), PORT: String(this.config.port), HOST: this.config.address });
    const now = Date.now();
    const rec: WorkerRecord = { slot, worker, state: 'starting', active: 0, unsent: 0, capacity: Infinity, startedAt: now, readyAt: 0, lastBeat: now, stalledAt: 0, stallExpired: false, gone: false, candidate };
    this.records.add(rec);
    link?.attach(rec);
    (worker as WorkerWithRecord)[REC] = rec;
    // A message to a worker that has just died fails with EPIPE; its exit is handled on 'exit'.
    // Stryker disable next-line StringLiteral,ObjectLiteral: a debug line; no test can time a send into that moment
    worker.on('error', (err) => this.log.debug({ slot, err: err.message }, 'worker channel error'));
    return new Promise((resolve, reject) => {
      rec.onReady = () => resolve(rec);
      rec.onEarlyExit = () => reject(new Error(`worker ${slot} exited during start-up`));
    });
  }

  private onMessage = (worker: Worker, msg: FromWorker): void => {
    const rec = (worker as WorkerWithRecord)[REC];
    // A handler may send its own messages on the channel (protocol.ts: only those with an
    // `acceptor` key are ours).
    // Stryker disable next-line ConditionalExpression,LogicalOperator,StringLiteral: equivalent, a string or number has no `acceptor`, and what has none is ignored below
    if (!rec || typeof msg !== 'object' || msg === null) return;
    if (msg.acceptor === 'hb') {
      rec.lastBeat = Date.now();
      if (msg.c) this.hooks.counts?.(rec, msg.c);
      if (msg.cap !== undefined) this.setCapacity(rec, msg.cap);
      if (rec.state === 'stalled') {
        rec.state = 'ready';
        rec.stallExpired = false;
        this.setReady(rec);
        this.log.info({ slot: rec.slot }, 'worker responsive again');
        this.hooks.ready(rec);
      }
      return;
    }
    if (msg.acceptor === 'fail') {
      // Before any worker was ever ready only: the start waits for every worker, so one that fails
      // to load after another has served would fail a start already serving (a handler that loads
      // only once: load.test.ts).
      if (!this.everReady && !rec.candidate) this.hooks.failed?.(msg.error);
      return;
    }
    if (msg.acceptor === 'ready') {
      this.everReady = true;
      if (msg.cap !== undefined) this.setCapacity(rec, msg.cap);
      rec.readyAt = rec.lastBeat = Date.now();
      if (rec.retiring) {
        // Told to drain while it was starting (a SIGTERM during a reload): that message came before
        // it listened for any, so it is told again now; it never takes a connection.
        this.log.info({ slot: rec.slot, workerPid: worker.process.pid, reason: rec.retiring }, 'worker ready while stopping: draining it');
        rec.worker.send({ acceptor: 'drain' }, undefined, undefined, () => {});
        rec.onReady?.();
        return;
      }
      rec.state = 'ready';
      this.setReady(rec);
      this.log.info({ slot: rec.slot, workerPid: worker.process.pid }, 'worker ready');
      this.hooks.ready(rec);
      rec.onReady?.();
      if (this.allReady && this.ready.length >= this.opts.workers) {
        this.allReady();
        this.allReady = undefined;
      }
      return;
    }
    this.hooks.message(rec, msg);
  };

  private onExit = (worker: Worker, code: number | null, signal: string | null): void => {
    const rec = (worker as WorkerWithRecord)[REC];
    if (!rec) return;
    this.records.delete(rec);
    this.ready = this.ready.filter((r) => r !== rec);
    rec.gone = true;
    try {
      this.afterExit(rec, code, signal);
    } finally {
      // After any immediate replacement is forked, so the dispatcher sees it.
      this.hooks.exit(rec);
      this.drains.get(rec)?.exited();
      this.drains.delete(rec);
    }
  };

  private afterExit(rec: WorkerRecord, code: number | null, signal: string | null): void {
    const wasReady = rec.readyAt > 0;
    // Stryker disable next-line ConditionalExpression,BooleanLiteral: equivalent, fork()'s promise has resolved once ready
    if (!wasReady) rec.onEarlyExit?.();
    if (rec.retiring) {
      this.log.info({ slot: rec.slot, code, signal, reason: rec.retiring }, 'worker stopped');
      if (rec.retiring === 'watchdog') this.replace(rec.slot, 'watchdog', 0);
      return;
    }
    // Stryker disable next-line ConditionalExpression: equivalent, stop() marks every worker retiring at once, so a death during shutdown returns above; replace() checks again
    if (this.stopping) return;
    if (rec.candidate && !wasReady) {
      this.log.error({ slot: rec.slot, code, signal }, 'new worker died during reload; the old one keeps the slot');
      return;
    }
    const reason: RestartReason = wasReady ? 'crash' : 'startup';
    // A slot whose workers die at start-up (or within a second of ready) backs off exponentially,
    // so a crash loop cannot spin the CPU. One that ran 1 to 10 s leaves the delay where it was
    // (none for a slot that never failed); one that ran 10 s proves the slot healthy: it resets.
    const upMs = wasReady ? Date.now() - rec.readyAt : 0;
    let fails = this.failures.get(rec.slot) ?? 0;
    // Stryker disable next-line EqualityOperator: `<=` is one millisecond apart
    if (upMs < 1000) fails++;
    else if (
      // Stryker disable next-line EqualityOperator: `>` is one millisecond apart
      upMs >= HEALTHY_AFTER_MS
    )
      fails = 0;
    this.failures.set(rec.slot, fails);
    const delay = fails === 0 ? 0 : Math.min(this.opts.restartBackoffMax, BACKOFF_BASE_MS * 2 ** (fails - 1));
    this.log.warn({ slot: rec.slot, code, signal, reason, lostConnections: rec.active, restartInMs: delay }, 'worker died');
    this.replace(rec.slot, reason, delay);
  }

  private replace(slot: number, reason: RestartReason, delay: number): void {
    // This check and the timer's keep a later change from forking during a shutdown.
    // Stryker disable next-line ConditionalExpression: equivalent, stop() marks every worker retiring 'shutdown' and clears the timers
    if (this.stopping) return;
    this.counters.restarts[reason]++;
    if (delay === 0) {
      this.fork(slot).catch(() => {});
      return;
    }
    const t = setTimeout(() => {
      this.pending.delete(slot);
      if (!this.stopping) this.fork(slot).catch(() => {});
    }, delay);
    this.pending.set(slot, t);
  }

  /** What its descriptors can hold changed; more room may take waiting connections. */
  private setCapacity(rec: WorkerRecord, cap: number): void {
    const more = cap > rec.capacity;
    rec.capacity = cap;
    if (more && rec.state === 'ready') this.hooks.ready(rec);
  }

  private setReady(rec: WorkerRecord): void {
    // Stryker disable next-line MethodExpression,ArrowFunction,ArithmeticOperator: equivalent, the dispatcher's ties go round the slots in turn, so the order decides nothing a client can see
    this.ready = [...this.ready, rec].sort((a, b) => a.slot - b.slot);
  }

  private checkHeartbeats = (): void => {
    const now = Date.now();
    for (const rec of this.records) {
      // A draining worker has its drain timeout instead (killed early and, in a reload, replaced:
      // one worker too many); a starting one sends no heartbeat until its handler has loaded.
      if ((rec.state !== 'ready' && rec.state !== 'stalled') || rec.retiring) continue;
      const silent = now - rec.lastBeat;
      // Stryker disable next-line EqualityOperator: `>=` is one millisecond apart
      if (this.opts.watchdog > 0 && silent > this.opts.watchdog) {
        this.log.error({ slot: rec.slot, workerPid: rec.worker.process.pid, stalledMs: silent }, 'worker event loop stalled; replacing it');
        rec.retiring = 'watchdog';
        rec.state = 'draining';
        // Stryker disable next-line MethodExpression: the worker was marked stalled, and left the list, STALL_MS in, unless --watchdog is shorter than that, which a test cannot hold on a loaded machine (emptying the list fails watchdog.test.ts)
        this.ready = this.ready.filter((r) => r !== rec);
        rec.worker.process.kill('SIGKILL');
      } else if (
        // Stryker disable next-line EqualityOperator: `>=` is one millisecond apart
        rec.state === 'ready' && silent > STALL_MS
      ) {
        this.log.warn({ slot: rec.slot, silentMs: silent }, 'worker stalled: no new connections for it');
        rec.state = 'stalled';
        rec.stalledAt = now;
        rec.stallExpired = this.opts.stallTimeout === 0;
        this.ready = this.ready.filter((r) => r !== rec);
        this.hooks.stalled(rec);
      } else if (rec.state === 'stalled' && !rec.stallExpired && now - rec.stalledAt >= this.opts.stallTimeout) {
        this.log.warn({ slot: rec.slot, stalledMs: now - rec.stalledAt, stallTimeout: this.opts.stallTimeout }, 'worker stalled past --stall-timeout: connections no longer wait for it');
        rec.stallExpired = true;
        this.hooks.stalled(rec);
      }
    }
  };

  /** Its channel is closed: no new connections for it; its exit will follow. */
  detach(rec: WorkerRecord): void {
    // Stryker disable next-line ConditionalExpression: equivalent, a draining worker is not in the ready list
    if (rec.state === 'draining') return;
    rec.state = 'draining';
    this.ready = this.ready.filter((r) => r !== rec);
  }

  /**
   * Tells one worker to finish its in-flight work and exit; kills it after the drain timeout.
   * Resolves true if it had to be killed.
   */
  retire(rec: WorkerRecord, why: RestartReason | 'shutdown'): Promise<boolean> {
    // Its exit has been seen: waiting for it would never end. (Survives mutation: no caller passes
    // such a worker now; reload() skips the ones that died.)
    if (rec.gone) return Promise.resolve(false);
    rec.retiring = why;
    // Draining already (a shutdown during a reload's drain): one drain and one timeout, and both
    // callers wait for its end. A second drain in its place left the reload waiting for ever.
    const drain = this.drains.get(rec);
    if (drain) {
      // A shutdown during a reload's drain: no worker follows, so it stops handing connections back.
      if (why === 'shutdown' && rec.handingBack) {
        rec.handingBack = false;
        rec.worker.send({ acceptor: 'drain' }, undefined, undefined, () => {});
      }
      return drain.killed;
    }
    rec.state = 'draining';
    this.ready = this.ready.filter((r) => r !== rec);
    let exited = (): void => {};
    const gone = new Promise<void>((resolve) => (exited = resolve));
    // Where a worker follows (a reload, a watchdog's replacement), idle connections move to it.
    rec.handingBack = why !== 'shutdown' && (this.hooks.movable?.(rec) ?? false);
    try {
      rec.worker.send(rec.handingBack ? { acceptor: 'drain', move: true } : { acceptor: 'drain' });
    } catch {
      // Channel already closed: it is on its way out.
    }
    let killed = false;
    const kill = setTimeout(() => {
      this.log.warn({ slot: rec.slot, active: rec.active }, 'drain timeout; killing worker');
      killed = true;
      rec.drainTimedOut = true;
      rec.worker.process.kill('SIGKILL');
    }, this.opts.drainTimeout);
    const killedAtEnd = gone.then(() => {
      clearTimeout(kill);
      return killed;
    });
    this.drains.set(rec, { exited, killed: killedAtEnd });
    return killedAtEnd;
  }

  /** Rolling reload: per slot, start the new worker, wait until it is ready, then drain the old. */
  async reload(): Promise<void> {
    // Stryker disable next-line MethodExpression,ArrowFunction,ConditionalExpression,EqualityOperator,StringLiteral: equivalent as far as a client can see, a worker draining as a reload starts is one the watchdog has just killed or whose channel failed; its exit follows within milliseconds, and the path for an old worker that died while its successor started leaves the slot one worker
    const old = [...this.records].filter((r) => r.state !== 'draining');
    for (const rec of old) {
      if (this.stopping) return;
      // Died since the reload began: the crash path has replaced it, with the new code already.
      if (rec.gone) continue;
      let fresh: WorkerRecord;
      try {
        fresh = await this.fork(rec.slot, true);
      } catch (err) {
        this.log.error({ slot: rec.slot, err: (err as Error).message }, 'reload stopped: new worker failed to start; old workers keep serving');
        return;
      }
      // A shutdown began while the new worker started: it drains both, as a shutdown.
      if (this.stopping) return;
      if (rec.gone) {
        // Died while its successor started. One worker per slot: a replacement waiting out the
        // slot's backoff is cancelled, and the successor, ready now, keeps the slot (draining it
        // would leave the slot empty until the timer); one already forked (no backoff) keeps it,
        // and the successor goes.
        const replacement = this.pending.get(rec.slot);
        if (replacement === undefined) {
          await this.retire(fresh, 'reload');
          continue;
        }
        clearTimeout(replacement);
        this.pending.delete(rec.slot);
        this.log.info({ slot: rec.slot, workerPid: fresh.worker.process.pid }, 'old worker died during reload; its successor keeps the slot, the backed-off replacement is cancelled');
        continue;
      }
      this.counters.restarts.reload++;
      await this.retire(rec, 'reload');
    }
  }

  /** Drains every worker (in parallel); resolves with how many had to be killed. */
  async stop(): Promise<number> {
    this.stopping = true;
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
    // `stopping` is what stops a reload under way (pool.test.ts sends SIGTERM during one).
    // Stryker disable next-line ConditionalExpression,BlockStatement: equivalent, every worker is marked retiring below, which the watchdog checks first, and its timer is unref'd
    if (this.watchdogTimer) clearInterval(this.watchdogTimer);
    const killed = await Promise.all([...this.records].map((r) => this.retire(r, 'shutdown')));
    return killed.filter(Boolean).length;
  }
}

const REC = Symbol('acceptor.record');
type WorkerWithRecord = Worker & { [REC]?: WorkerRecord };
