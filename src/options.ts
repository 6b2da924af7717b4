// The one options object shared by the CLI, the environment and the library API.
// Every option is declared once in SPECS: its flag, default, parser and help text.
import { availableParallelism } from 'node:os';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parsePrefixes, type Prefixes } from './admission/client.js';

export type Strategy = 'handoff' | 'round-robin' | 'shared' | 'reuseport';
export type Protocol = 'http' | 'tcp';
export type TransportOption = 'auto' | 'fdpass' | 'ipc';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type LogFormat = 'json' | 'pretty';
export type TlsBusy = 'alert' | 'reset';
export type QueueOrder = 'fair' | 'fifo';
export type Sticky = 'none' | 'client';

export interface AcceptorOptions {
  /** Host name or address to bind; undefined = all interfaces (`::` dual stack, else 0.0.0.0). */
  host: string | undefined;
  /** TCP port; 0 picks a free one. Default `$PORT` or 8080. */
  port: number;
  /** Connections that may wait for a worker before the next is told busy. Default 511. */
  backlog: number;
  /**
   * Backlog passed to listen(), i.e. the kernel's accept queue. Default: for handoff the kernel's
   * maximum (net.core.somaxconn), since the primary's queue is the exact limit; else --backlog.
   */
  listenBacklog: number | undefined;
  /** Worker processes. Default: os.availableParallelism(). */
  workers: number;
  /** Concurrent connections per worker before it counts as full. Default 1024. */
  maxConnections: number;
  /** How connections reach workers. Default `handoff` (the only one with exact admission). */
  strategy: Strategy;
  /**
   * handoff: connections one client (admission/client.ts) may hold in the workers plus have
   * waiting; past it, told busy at once (`client_limit`). 0 = no limit (default).
   */
  maxConnectionsPerClient: number;
  /** handoff: the bits of an IPv4 and of an IPv6 address that name one client, as `v4,v6`. Default `32,64`. */
  clientPrefix: string;
  /**
   * handoff: the order waiting connections get free slots. `fair` (default): clients take turns,
   * and when the queue is full a newcomer displaces the heaviest client's newest waiting
   * connection (`displaced`); with one client this is FIFO. `fifo`: arrival order.
   */
  queue: QueueOrder;
  /**
   * handoff: `client` sends all of a client's connections to one worker slot (a consistent hash of
   * its key), where they wait if that worker is full: for apps that keep sessions in memory
   * (socket.io's long polling). Default `none`.
   */
  sticky: Sticky;
  /**
   * How handoff passes connections to workers: `fdpass` (native addon, batched descriptor
   * passing), `ipc` (Node's channel, one in flight per worker), or `auto` (default: fdpass where
   * the addon loads, else ipc with a warning).
   */
  transport: TransportOption;
  /** `http` (503 when busy) or `tcp` (busy line or reset). Default `http`. */
  protocol: Protocol;
  /**
   * PEM certificate (chain) file. With --tls-key, the workers terminate TLS: HTTPS (and HTTP/2 by
   * ALPN, see http2) for `http`, TLS streams for `tcp`. Default none (plain text).
   */
  tlsCert: string | undefined;
  /** PEM private key file for --tls-cert. Default none. */
  tlsKey: string | undefined;
  /** PEM file of intermediate certificates sent after --tls-cert. Default none. */
  tlsCa: string | undefined;
  /** Over TLS, offer HTTP/2 by ALPN (HTTP/1.1 stays available). Default true. */
  http2: boolean;
  /**
   * How a refused TLS client is told busy, before any handshake: `alert` (a fatal TLS
   * internal_error alert, which the client reports at once) or `reset`. Default `alert`.
   */
  tlsBusy: TlsBusy;
  /**
   * The app: a module that starts its own server (listen() on $PORT), or exports a server, a
   * `(req, res)` / `(socket)` listener, or an object with `fetch(request)`. Also the CLI's one
   * positional argument. Default: the built-in app.
   */
  handler: string | undefined;
  /** Milliseconds a worker's app may take to load and start serving. Default 30000. */
  startTimeout: number;
  /** Serve /metrics at all. Default true. */
  metrics: boolean;
  /** Address of the /metrics listener. Default 127.0.0.1 (loopback only). */
  metricsHost: string;
  /** Port of the /metrics listener; 0 picks a free one. Default 9464. */
  metricsPort: number;
  /** Bearer token required on /metrics when set. Default none. */
  metricsToken: string | undefined;
  /** File holding the bearer token (kept out of `ps`); read once at start. Default none. */
  metricsTokenFile: string | undefined;
  /** Milliseconds in-flight work may take to finish on SIGTERM / reload. Default 10000. */
  drainTimeout: number;
  /** Milliseconds a connection may wait in the primary's queue before it is told busy. Default 10000. */
  queueTimeout: number;
  /** Seconds sent in `Retry-After` with a 503. Default 1. */
  retryAfter: number;
  /** Line written to a refused TCP client, or `reset` to refuse with a TCP reset. Default `busy\r\n`. */
  tcpBusy: string;
  /** Milliseconds to receive a request's headers (slowloris guard). Default 10000. */
  headersTimeout: number;
  /** Milliseconds to receive a whole request. Default 30000. */
  requestTimeout: number;
  /** Milliseconds an idle keep-alive connection stays open. Default 5000. */
  keepAliveTimeout: number;
  /** Milliseconds without any traffic before a connection is closed (tcp protocol too). Default 120000. */
  idleTimeout: number;
  /** Milliseconds a worker's event loop may stall before the watchdog replaces it; 0 = off. Default 5000. */
  watchdog: number;
  /**
   * Milliseconds a stalled worker (no heartbeat for 400 ms: a long CPU burst) is still waited for:
   * it gets no new connections, and they wait in the queue for a slot. Once every live worker has
   * been stalled this long, waiting ones and new ones are told busy at once (`no_worker`). Default 2000.
   */
  stallTimeout: number;
  /**
   * /readyz turns 503 (shedding) while more than this many connections wait in the queue; it is
   * ready again at half of it. Default (undefined): half of --backlog.
   */
  readyQueueThreshold: number | undefined;
  /** Longest delay before a crash-looping worker is restarted (the delay doubles from 100 ms up to this). Default 10000. */
  restartBackoffMax: number;
  /** pino level. Default `info`. */
  logLevel: LogLevel;
  /** `json` (default) or `pretty` for people at a terminal. */
  logFormat: LogFormat;
}

/** Thrown for a bad option value; the CLI prints its message and exits 2. */
export class OptionError extends Error {
  constructor(readonly option: string, message: string) {
    super(message);
    this.name = 'OptionError';
  }
}

type Parse<T> = (raw: string, flag: string) => T;

interface Spec<K extends keyof AcceptorOptions> {
  key: K;
  flag: string;
  arg: string;
  help: string;
  def: (env: NodeJS.ProcessEnv) => AcceptorOptions[K];
  defHelp: string;
  parse: Parse<AcceptorOptions[K]>;
  boolean?: true;
}

const bad = (flag: string, raw: string, want: string): OptionError =>
  new OptionError(flag, `invalid --${flag} ${JSON.stringify(raw)}: expected ${want}`);

function int(min: number, max: number): Parse<number> {
  return (raw, flag) => {
    const n = /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) throw bad(flag, raw, `an integer from ${min} to ${max}`);
    return n;
  };
}

/** Milliseconds: `250`, `250ms`, `10s`, `2m`. */
function duration(min: number): Parse<number> {
  return (raw, flag) => {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(raw);
    const n = m ? Number(m[1]) * (m[2] === 's' ? 1000 : m[2] === 'm' ? 60000 : 1) : NaN;
    if (!Number.isFinite(n) || n < min || n > 2 ** 31 - 1) throw bad(flag, raw, `a duration like 500ms, 10s or 2m (at least ${min}ms)`);
    return Math.round(n);
  };
}

function oneOf<T extends string>(...values: T[]): Parse<T> {
  return (raw, flag) => {
    if (!(values as string[]).includes(raw)) throw bad(flag, raw, `one of ${values.join(', ')}`);
    return raw as T;
  };
}

function bool(raw: string, flag: string): boolean {
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw bad(flag, raw, 'true or false');
}

function text(raw: string, flag: string): string {
  if (raw.trim() === '') throw bad(flag, raw, 'a non-empty value');
  return raw;
}

function existingFile(raw: string, flag: string): string {
  const abs = resolve(text(raw, flag));
  if (!existsSync(abs)) throw new OptionError(flag, `invalid --${flag} ${JSON.stringify(raw)}: no such file ${abs}`);
  return abs;
}

function unescape(raw: string): string {
  return raw.replace(/\\r/g, '\r').replace(/\\n/g, '\n').replace(/\\t/g, '\t');
}

const LEVELS: LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

// Order here is the order of `--help`.
export const SPECS: { [K in keyof AcceptorOptions]: Spec<K> }[keyof AcceptorOptions][] = [
  { key: 'host', flag: 'host', arg: '<name|addr>', help: 'host name or address to bind (a name binds its first address that binds)', def: () => undefined, defHelp: 'all interfaces', parse: text },
  { key: 'port', flag: 'port', arg: '<n>', help: 'TCP port (0 = any free port)', def: (env) => defaultPort(env), defHelp: '$PORT or 8080', parse: int(0, 65535) },
  { key: 'backlog', flag: 'backlog', arg: '<n>', help: 'connections that may wait for a worker; the next one is told busy', def: () => 511, defHelp: '511', parse: int(1, 1_000_000) },
  { key: 'listenBacklog', flag: 'listen-backlog', arg: '<n>', help: "kernel listen() backlog (handoff: a buffer in front of the acceptor's exact queue)", def: () => undefined, defHelp: 'handoff: somaxconn; others: --backlog', parse: int(1, 1_000_000) },
  { key: 'workers', flag: 'workers', arg: '<n>', help: 'worker processes', def: () => availableParallelism(), defHelp: 'available parallelism', parse: int(1, 1024) },
  { key: 'maxConnections', flag: 'max-connections', arg: '<n>', help: 'concurrent connections per worker before it counts as full', def: () => 1024, defHelp: '1024', parse: int(1, 1_000_000) },
  { key: 'strategy', flag: 'strategy', arg: '<name>', help: 'handoff | round-robin | shared | reuseport (only handoff admits exactly)', def: () => 'handoff', defHelp: 'handoff', parse: oneOf<Strategy>('handoff', 'round-robin', 'shared', 'reuseport') },
  { key: 'maxConnectionsPerClient', flag: 'max-connections-per-client', arg: '<n>', help: 'handoff: connections one client may hold plus have waiting; the next is told busy (0 = no limit)', def: () => 0, defHelp: '0', parse: int(0, 1_000_000) },
  { key: 'clientPrefix', flag: 'client-prefix', arg: '<v4,v6>', help: 'handoff: the address bits that name one client, IPv4 and IPv6', def: () => '32,64', defHelp: '32,64', parse: (raw, flag) => (parsePrefixes(raw) ? raw.replace(/\s/g, '') : (() => { throw bad(flag, raw, 'two prefix lengths like 32,64 (IPv4 0-32, IPv6 0-128)'); })()) },
  { key: 'queue', flag: 'queue', arg: '<order>', help: 'handoff: fair (clients take turns; a full queue displaces the heaviest client) | fifo', def: () => 'fair', defHelp: 'fair', parse: oneOf<QueueOrder>('fair', 'fifo') },
  { key: 'sticky', flag: 'sticky', arg: '<none|client>', help: "handoff: client = each client's connections go to one worker (in-memory sessions, socket.io polling)", def: () => 'none', defHelp: 'none', parse: oneOf<Sticky>('none', 'client') },
  { key: 'transport', flag: 'transport', arg: '<name>', help: 'handoff only: auto | fdpass | ipc (auto = fdpass where the native addon loads)', def: () => 'auto', defHelp: 'auto', parse: oneOf<TransportOption>('auto', 'fdpass', 'ipc') },
  { key: 'protocol', flag: 'protocol', arg: '<name>', help: 'http | tcp', def: () => 'http', defHelp: 'http', parse: oneOf<Protocol>('http', 'tcp') },
  { key: 'tlsCert', flag: 'tls-cert', arg: '<pem>', help: 'certificate (chain) file: the workers terminate TLS (HTTPS, HTTP/2 by ALPN)', def: () => undefined, defHelp: 'none: plain text', parse: existingFile },
  { key: 'tlsKey', flag: 'tls-key', arg: '<pem>', help: 'private key file for --tls-cert', def: () => undefined, defHelp: 'none', parse: existingFile },
  { key: 'tlsCa', flag: 'tls-ca', arg: '<pem>', help: 'intermediate certificates sent after --tls-cert', def: () => undefined, defHelp: 'none', parse: existingFile },
  { key: 'http2', flag: 'http2', arg: '<bool>', help: 'over TLS, offer HTTP/2 by ALPN besides HTTP/1.1 (--no-http2: HTTP/1.1 only)', def: () => true, defHelp: 'true', parse: bool, boolean: true },
  { key: 'tlsBusy', flag: 'tls-busy', arg: '<alert|reset>', help: 'how a refused TLS client is told busy: a TLS internal_error alert, or a TCP reset', def: () => 'alert', defHelp: 'alert', parse: oneOf<TlsBusy>('alert', 'reset') },
  { key: 'handler', flag: 'handler', arg: '<module>', help: 'the app (also the one positional argument): a server.js that calls listen(), or one exporting a server, a (req, res) or (socket) listener, or { fetch }', def: () => undefined, defHelp: 'built-in app', parse: existingFile },
  { key: 'startTimeout', flag: 'start-timeout', arg: '<dur>', help: "time a worker's app may take to load and listen before the start fails", def: () => 30_000, defHelp: '30s', parse: duration(1) },
  { key: 'metrics', flag: 'metrics', arg: '<bool>', help: 'serve Prometheus /metrics (--no-metrics turns it off)', def: () => true, defHelp: 'true', parse: bool, boolean: true },
  { key: 'metricsHost', flag: 'metrics-host', arg: '<addr>', help: 'address of the /metrics listener', def: () => '127.0.0.1', defHelp: '127.0.0.1', parse: text },
  { key: 'metricsPort', flag: 'metrics-port', arg: '<n>', help: 'port of the /metrics listener (0 = any free port)', def: () => 9464, defHelp: '9464', parse: int(0, 65535) },
  { key: 'metricsToken', flag: 'metrics-token', arg: '<token>', help: 'require "Authorization: Bearer <token>" on /metrics', def: () => undefined, defHelp: 'none', parse: text },
  { key: 'metricsTokenFile', flag: 'metrics-token-file', arg: '<path>', help: 'read the /metrics bearer token from this file (not visible in ps)', def: () => undefined, defHelp: 'none', parse: existingFile },
  { key: 'drainTimeout', flag: 'drain-timeout', arg: '<dur>', help: 'time in-flight work gets to finish on SIGTERM or reload', def: () => 10_000, defHelp: '10s', parse: duration(0) },
  { key: 'queueTimeout', flag: 'queue-timeout', arg: '<dur>', help: 'longest wait in the queue before a connection is told busy', def: () => 10_000, defHelp: '10s', parse: duration(1) },
  { key: 'retryAfter', flag: 'retry-after', arg: '<s>', help: 'seconds in the Retry-After header of a 503', def: () => 1, defHelp: '1', parse: int(0, 86_400) },
  { key: 'tcpBusy', flag: 'tcp-busy', arg: '<line|reset>', help: 'line sent to a refused tcp client (\\r \\n escapes), or "reset" for a TCP reset', def: () => 'busy\r\n', defHelp: '"busy\\r\\n"', parse: (raw, flag) => unescape(text(raw, flag)) },
  { key: 'headersTimeout', flag: 'headers-timeout', arg: '<dur>', help: 'time to receive request headers (slowloris guard)', def: () => 10_000, defHelp: '10s', parse: duration(1) },
  { key: 'requestTimeout', flag: 'request-timeout', arg: '<dur>', help: 'time to receive a whole request', def: () => 30_000, defHelp: '30s', parse: duration(1) },
  { key: 'keepAliveTimeout', flag: 'keep-alive-timeout', arg: '<dur>', help: 'idle time before a keep-alive connection is closed', def: () => 5_000, defHelp: '5s', parse: duration(1) },
  { key: 'idleTimeout', flag: 'idle-timeout', arg: '<dur>', help: 'time without traffic before any connection is closed', def: () => 120_000, defHelp: '2m', parse: duration(1) },
  { key: 'stallTimeout', flag: 'stall-timeout', arg: '<dur>', help: 'how long connections wait for stalled workers before, with every worker stalled, they are told busy', def: () => 2_000, defHelp: '2s', parse: duration(0) },
  { key: 'watchdog', flag: 'watchdog', arg: '<dur>', help: 'event-loop stall after which a worker is replaced (0 = off)', def: () => 5_000, defHelp: '5s', parse: duration(0) },
  { key: 'readyQueueThreshold', flag: 'ready-queue-threshold', arg: '<n>', help: '/readyz says 503 (shedding) while more than this many wait; ready again at half', def: () => undefined, defHelp: 'half of --backlog', parse: int(0, 1_000_000) },
  { key: 'restartBackoffMax', flag: 'restart-backoff-max', arg: '<dur>', help: 'cap of the crash-loop restart delay (doubles from 100ms)', def: () => 10_000, defHelp: '10s', parse: duration(100) },
  { key: 'logLevel', flag: 'log-level', arg: '<level>', help: LEVELS.join(' | '), def: () => 'info', defHelp: 'info', parse: oneOf<LogLevel>(...LEVELS) },
  { key: 'logFormat', flag: 'log-format', arg: '<fmt>', help: 'json | pretty', def: () => 'json', defHelp: 'json', parse: oneOf<LogFormat>('json', 'pretty') },
];

const BY_FLAG = new Map(SPECS.map((s) => [s.flag, s]));

function defaultPort(env: NodeJS.ProcessEnv): number {
  const raw = env.PORT;
  return raw === undefined || raw === '' ? 8080 : fromVariable('PORT', 'port', () => int(0, 65535)(raw, 'port'));
}

/** A value from an environment variable: a bad one is reported under the variable's own name. */
function fromVariable<T>(name: string, flag: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof OptionError) throw new OptionError(flag, err.message.replace(`invalid --${flag} `, `invalid ${name} `));
    throw err;
  }
}

/** Environment name of an option: `ACCEPTOR_MAX_CONNECTIONS` for `--max-connections`. */
export const envName = (flag: string): string => `ACCEPTOR_${flag.toUpperCase().replace(/-/g, '_')}`;

/**
 * Options from defaults, then the environment, then `overrides` (the CLI's flags or the
 * library caller's object). Values are validated the same way from every source.
 */
export function resolveOptions(overrides: Partial<AcceptorOptions> = {}, env: NodeJS.ProcessEnv = process.env): AcceptorOptions {
  const out: Record<string, unknown> = {};
  for (const spec of SPECS) {
    const fromEnv = env[envName(spec.flag)];
    const given = (overrides as Record<string, unknown>)[spec.key];
    if (given !== undefined) out[spec.key] = check(spec, given);
    else if (fromEnv !== undefined && fromEnv !== '') out[spec.key] = fromVariable(envName(spec.flag), spec.flag, () => spec.parse(fromEnv, spec.flag));
    else out[spec.key] = spec.def(env);
  }
  for (const key of Object.keys(overrides)) {
    if (!SPECS.some((s) => s.key === key)) throw new OptionError(key, `unknown option ${JSON.stringify(key)}`);
  }
  const opts = out as unknown as AcceptorOptions;
  if (opts.metricsTokenFile !== undefined) opts.metricsToken = tokenFromFile(opts);
  if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) {
    const missing = opts.tlsCert === undefined ? 'tls-cert' : 'tls-key';
    throw new OptionError(missing, `missing --${missing}: TLS needs both --tls-cert and --tls-key`);
  }
  if (opts.tlsCa !== undefined && opts.tlsCert === undefined) throw new OptionError('tls-ca', 'invalid --tls-ca: it needs --tls-cert and --tls-key');
  if (opts.strategy !== 'handoff') {
    // Only the primary of handoff sees connections before a worker does.
    if (opts.maxConnectionsPerClient > 0) throw new OptionError('max-connections-per-client', `invalid --max-connections-per-client with --strategy ${opts.strategy}: only handoff admits connections in the primary`);
    if (opts.sticky !== 'none') throw new OptionError('sticky', `invalid --sticky ${opts.sticky} with --strategy ${opts.strategy}: only handoff chooses the worker in the primary`);
  }
  if (opts.strategy === 'reuseport' && !supportsReusePort()) {
    throw new OptionError('strategy', `invalid --strategy "reuseport": needs Node >= 22.12 (this is ${process.version})`);
  }
  return opts;
}

function tokenFromFile(opts: AcceptorOptions): string {
  const flag = 'metrics-token-file';
  if (opts.metricsToken !== undefined) throw new OptionError(flag, `invalid --${flag}: give --metrics-token or --metrics-token-file, not both`);
  let token: string;
  try {
    token = readFileSync(opts.metricsTokenFile!, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new OptionError(flag, `invalid --${flag} ${JSON.stringify(opts.metricsTokenFile)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (token.trim() === '') throw new OptionError(flag, `invalid --${flag} ${JSON.stringify(opts.metricsTokenFile)}: the file is empty`);
  return token;
}

/** A value from the library API: strings go through the CLI parser, typed values are range-checked by it too. */
function check(spec: (typeof SPECS)[number], value: unknown): unknown {
  if (typeof value === 'boolean' && spec.boolean) return value;
  if (typeof value === 'number' || typeof value === 'string') return spec.parse(String(value), spec.flag);
  throw new OptionError(spec.flag, `invalid --${spec.flag} ${JSON.stringify(value)}: wrong type ${typeof value}`);
}

/** Parses argv (without node and script). Returns the overrides, or 'help'. */
export function parseArgv(argv: string[]): Partial<AcceptorOptions> | 'help' | 'version' {
  const out: Record<string, unknown> = {};
  let positional = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') return 'help';
    if (arg === '--version') return 'version';
    if (!arg.startsWith('-') && arg !== '') {
      // The app, as `acceptor ./server.js`: the same as --handler, given once.
      if (out.handler !== undefined || positional) throw new OptionError('handler', `invalid argument ${JSON.stringify(arg)}: the app (--handler) is given once`);
      positional = true;
      out.handler = existingFile(arg, 'handler');
      continue;
    }
    const m = /^--(no-)?([a-z][a-z0-9-]*)(?:=(.*))?$/s.exec(arg);
    if (!m) throw new OptionError(arg, `unexpected argument ${JSON.stringify(arg)} (see --help)`);
    const [, no, flag, inline] = m as unknown as [string, string | undefined, string, string | undefined];
    const spec = BY_FLAG.get(flag);
    if (!spec) throw new OptionError(flag, `unknown option --${flag} (see --help)`);
    if (no) {
      if (!spec.boolean || inline !== undefined) throw new OptionError(flag, `unknown option --no-${flag} (see --help)`);
      out[spec.key] = false;
      continue;
    }
    let raw = inline;
    if (raw === undefined) {
      const next = argv[i + 1];
      if (spec.boolean && (next === undefined || next.startsWith('--'))) raw = 'true';
      else if (next === undefined) throw new OptionError(flag, `missing value for --${flag}`);
      else raw = argv[++i];
    }
    if (spec.key === 'handler' && out.handler !== undefined) throw new OptionError('handler', 'invalid --handler: the app is given once (as --handler or as the argument)');
    out[spec.key] = spec.parse(raw!, flag);
  }
  return out as Partial<AcceptorOptions>;
}

export function helpText(): string {
  const rows = SPECS.map((s) => [`--${s.flag} ${s.arg}`, s.help, s.defHelp]);
  const w = Math.max(...rows.map((r) => r[0]!.length));
  const lines = rows.map(([f, h, d]) => `  ${f!.padEnd(w)}  ${h} (default: ${d})`);
  return [
    'Usage: acceptor [options] [app.js]',
    '',
    'Binds the endpoint in a primary process and fans connections out to worker processes.',
    'With the default strategy, once every worker holds --max-connections, up to --backlog',
    'connections wait and the next one is told busy at once (HTTP 503, or the tcp busy line).',
    '',
    'Options (each may also be set as ACCEPTOR_<OPTION>, e.g. ACCEPTOR_MAX_CONNECTIONS=64; PORT sets --port):',
    ...lines,
    `  ${'--help'.padEnd(w)}  this text`,
    '',
  ].join('\n');
}

/** SO_REUSEPORT through net.Server#listen({ reusePort }) arrived in Node 22.12 / 23.1. */
export function supportsReusePort(version = process.versions.node): boolean {
  const [major, minor] = version.split('.').map(Number) as [number, number];
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
}

/** --client-prefix as numbers. */
export const clientPrefixes = (o: AcceptorOptions): Prefixes => parsePrefixes(o.clientPrefix)!;

/** Whether the primary needs each connection's client key: the fair queue, a per-client limit, or sticky sessions. */
export const needsClientKeys = (o: AcceptorOptions): boolean => o.strategy === 'handoff' && (o.queue === 'fair' || o.maxConnectionsPerClient > 0 || o.sticky === 'client');

/** Whether workers keep each connection's client key: to tell its close by key, or hand it back to its sticky slot. */
export const workersKeepKeys = (o: AcceptorOptions): boolean => o.strategy === 'handoff' && (o.maxConnectionsPerClient > 0 || o.sticky === 'client');

/** Whether workers tell closes by client key: the primary counts what each client holds (--max-connections-per-client). */
export const closesByKey = (o: AcceptorOptions): boolean => o.strategy === 'handoff' && o.maxConnectionsPerClient > 0;
