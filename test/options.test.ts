import t from 'tap';
import { spawnSync } from 'node:child_process';
import { parseArgv, resolveOptions, helpText, SPECS, envName, supportsReusePort, OptionError } from '../src/options.js';
import { CLI, fixture } from './helpers/cli.js';

t.test('defaults are documented and applied', async (t) => {
  const o = resolveOptions({}, {});
  t.equal(o.port, 8080);
  t.equal(o.backlog, 511);
  t.equal(o.strategy, 'handoff');
  t.equal(o.protocol, 'http');
  t.equal(o.metricsHost, '127.0.0.1');
  t.equal(o.metricsPort, 9464);
  t.equal(o.host, undefined);
  t.ok(o.workers >= 1);
  t.equal(resolveOptions({}, { PORT: '3000' }).port, 3000, 'PORT sets the port');
  t.equal(resolveOptions({}, { PORT: '3000', ACCEPTOR_PORT: '3001' }).port, 3001, 'ACCEPTOR_PORT beats PORT');
  t.equal(resolveOptions({ port: 3002 }, { ACCEPTOR_PORT: '3001' }).port, 3002, 'explicit beats env');
  t.equal(resolveOptions({}, { ACCEPTOR_MAX_CONNECTIONS: '7' }).maxConnections, 7);
  t.equal(resolveOptions({}, { ACCEPTOR_METRICS: 'false' }).metrics, false);
  t.equal(envName('max-connections'), 'ACCEPTOR_MAX_CONNECTIONS');
});

t.test('argv parsing', async (t) => {
  t.same(parseArgv(['--port', '1', '--backlog=5', '--no-metrics', '--strategy', 'shared']), { port: 1, backlog: 5, metrics: false, strategy: 'shared' });
  t.same(parseArgv(['--metrics']), { metrics: true });
  t.same(parseArgv(['--drain-timeout', '2s', '--queue-timeout', '250ms', '--idle-timeout', '1m']), { drainTimeout: 2000, queueTimeout: 250, idleTimeout: 60000 });
  t.same(parseArgv(['--tcp-busy', 'go away\\r\\n']), { tcpBusy: 'go away\r\n' });
  t.same(parseArgv(['--workers', '2', fixture('apps/express.mjs'), '--port', '3']), { workers: 2, handler: fixture('apps/express.mjs'), port: 3 }, 'the app as the positional argument, anywhere');
  t.same(parseArgv(['test/fixtures/apps/koa.mjs']), { handler: fixture('apps/koa.mjs') }, 'resolved to an absolute path');
  t.same(parseArgv(['--start-timeout', '2s']), { startTimeout: 2000 });
  t.equal(parseArgv(['--help']), 'help');
  t.equal(parseArgv(['--version']), 'version');
  t.same(resolveOptions({ drainTimeout: 1500, tcpBusy: 'no\n' }, {}).drainTimeout, 1500, 'library numbers are milliseconds');
  t.same(resolveOptions({ tcpBusy: 'no\n' }, {}).tcpBusy, 'no\n');
});

t.test('library errors name the option', async (t) => {
  const optionOf = (fn: () => unknown): string | undefined => {
    try {
      fn();
    } catch (e) {
      return e instanceof OptionError ? e.option : 'not an OptionError';
    }
    return undefined;
  };
  t.equal(optionOf(() => resolveOptions({ backlog: 0 }, {})), 'backlog');
  t.equal(optionOf(() => resolveOptions({ workers: true as unknown as number }, {})), 'workers');
  t.throws(() => resolveOptions({ workers: true as unknown as number }, {}), { message: /--workers true: wrong type/ });
  t.equal(optionOf(() => resolveOptions({ nope: 1 } as never, {})), 'nope');
  t.equal(optionOf(() => resolveOptions({}, { ACCEPTOR_BACKLOG: 'x' })), 'backlog');
  t.type(new OptionError('x', 'y'), Error);
});

t.test('reuseport support is detected by version', async (t) => {
  t.equal(supportsReusePort('20.20.2'), false);
  t.equal(supportsReusePort('22.11.0'), false);
  t.equal(supportsReusePort('22.12.0'), true);
  t.equal(supportsReusePort('23.0.0'), false);
  t.equal(supportsReusePort('23.1.0'), true);
  t.equal(supportsReusePort('24.0.0'), true);
});

t.test('--help lists every option with its default', async (t) => {
  const r = spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' });
  t.equal(r.status, 0);
  for (const s of SPECS) t.match(r.stdout, new RegExp(`--${s.flag} .*\\(default: ${s.defHelp.replace(/[$\\]/g, (c) => '\\' + c)}\\)`), `--${s.flag}`);
  t.equal(helpText(), r.stdout);
});

const BAD: [string[], string][] = [
  [['--metrics-token-file', '/no/such/token'], 'metrics-token-file'],
  [['--port', '70000'], 'port'],
  [['--port', 'http'], 'port'],
  [['--backlog', '0'], 'backlog'],
  [['--backlog', '-5'], 'backlog'],
  [['--workers', '0'], 'workers'],
  [['--workers', '1.5'], 'workers'],
  [['--max-connections', 'many'], 'max-connections'],
  [['--strategy', 'random'], 'strategy'],
  [['--max-connections-per-client', '-1'], 'max-connections-per-client'],
  [['--strategy', 'shared', '--max-connections-per-client', '5'], 'max-connections-per-client'],
  [['--client-prefix', '33,64'], 'client-prefix'],
  [['--client-prefix', '24'], 'client-prefix'],
  [['--queue', 'lifo'], 'queue'],
  [['--sticky', 'ip'], 'sticky'],
  [['--strategy', 'round-robin', '--sticky', 'client'], 'sticky'],
  [['--protocol', 'udp'], 'protocol'],
  [['--handler', '/no/such/handler.js'], 'handler'],
  [['/no/such/app.js'], 'handler'],
  [[fixture('apps/express.mjs'), fixture('apps/koa.mjs')], 'handler'],
  [['--handler', fixture('apps/express.mjs'), fixture('apps/koa.mjs')], 'handler'],
  [[fixture('apps/express.mjs'), '--handler', fixture('apps/koa.mjs')], 'handler'],
  [['--start-timeout', '0'], 'start-timeout'],
  [['--stall-timeout', 'long'], 'stall-timeout'],
  [['--metrics', 'maybe'], 'metrics'],
  [['--metrics-port', '99999'], 'metrics-port'],
  [['--metrics-host', ''], 'metrics-host'],
  [['--drain-timeout', 'soon'], 'drain-timeout'],
  [['--queue-timeout', '0'], 'queue-timeout'],
  [['--retry-after', '-1'], 'retry-after'],
  [['--watchdog', '5 days'], 'watchdog'],
  [['--log-level', 'loud'], 'log-level'],
  [['--log-format', 'xml'], 'log-format'],
  [['--headers-timeout', 'x'], 'headers-timeout'],
  [['--host', ''], 'host'],
  [['--listen-backlog', '0'], 'listen-backlog'],
  [['--metrics-token', ''], 'metrics-token'],
  [['--tcp-busy', ''], 'tcp-busy'],
  [['--request-timeout', 'x'], 'request-timeout'],
  [['--keep-alive-timeout', '0'], 'keep-alive-timeout'],
  [['--idle-timeout', 'forever'], 'idle-timeout'],
  [['--transport', 'pigeon'], 'transport'],
  [['--restart-backoff-max', '50ms'], 'restart-backoff-max'],
  [['--ready-queue-threshold', '-1'], 'ready-queue-threshold'],
  [['--tls-cert', '/no/such/cert.pem'], 'tls-cert'],
  [['--tls-key', '/no/such/key.pem'], 'tls-key'],
  [['--tls-ca', '/no/such/ca.pem'], 'tls-ca'],
  [['--http2', 'perhaps'], 'http2'],
  [['--tls-busy', 'shout'], 'tls-busy'],
  [['--bogus', '1'], 'bogus'],
  [['--port'], 'port'],
  [['stray'], 'stray'],
  [['--no-port'], 'no-port'],
];

t.test('every option has a bad value in the list above', async (t) => {
  for (const s of SPECS) t.ok(BAD.some(([argv]) => argv.includes(`--${s.flag}`)), `--${s.flag}`);
});

t.test('an invalid option exits 2 with one line naming it', async (t) => {
  for (const [args, flag] of BAD) {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 10_000 });
    t.equal(r.status, 2, `${args.join(' ')}: exit 2`);
    const lines = r.stderr.trimEnd().split('\n');
    t.equal(lines.length, 1, `${args.join(' ')}: one line`);
    t.match(lines[0], new RegExp(`^acceptor: .*${flag}`), `${args.join(' ')}: names ${flag}`);
    t.equal(r.stdout, '', 'nothing started');
  }
  const env = spawnSync(process.execPath, [CLI], { encoding: 'utf8', env: { ...process.env, ACCEPTOR_BACKLOG: 'lots' } });
  t.equal(env.status, 2, 'a bad ACCEPTOR_* value too');
  t.equal(env.stderr, 'acceptor: invalid ACCEPTOR_BACKLOG "lots": expected an integer from 1 to 1000000\n', 'named as the user set it');
  const port = spawnSync(process.execPath, [CLI], { encoding: 'utf8', env: { ...process.env, PORT: 'eighty' } });
  t.equal(port.status, 2, 'a bad PORT too');
  t.equal(port.stderr, 'acceptor: invalid PORT "eighty": expected an integer from 0 to 65535\n');
  const workers = spawnSync(process.execPath, [CLI], { encoding: 'utf8', env: { ...process.env, ACCEPTOR_WORKERS: 'zero' } });
  t.equal(workers.stderr, 'acceptor: invalid ACCEPTOR_WORKERS "zero": expected an integer from 1 to 1024\n');
  const flag = spawnSync(process.execPath, [CLI, '--workers', 'zero'], { encoding: 'utf8' });
  t.equal(flag.stderr, 'acceptor: invalid --workers "zero": expected an integer from 1 to 1024\n', 'a flag is named as a flag');
});

t.test('--metrics-token-file: the token from a file, a trailing newline dropped; clear errors', async (t) => {
  const dir = t.testdir({ token: 's3cret\n', empty: '\n' });
  t.equal(resolveOptions({ metricsTokenFile: `${dir}/token` }, {}).metricsToken, 's3cret');
  t.equal(resolveOptions({}, { ACCEPTOR_METRICS_TOKEN_FILE: `${dir}/token` }).metricsToken, 's3cret', 'from the environment too');
  t.throws(() => resolveOptions({ metricsTokenFile: `${dir}/empty` }, {}), { message: /invalid --metrics-token-file ".*empty": the file is empty/ });
  t.throws(() => resolveOptions({ metricsTokenFile: `${dir}/token`, metricsToken: 'x' }, {}), { message: 'invalid --metrics-token-file: give --metrics-token or --metrics-token-file, not both' });
  const r = spawnSync(process.execPath, [CLI, '--metrics-token-file', `${dir}/empty`], { encoding: 'utf8' });
  t.equal(r.status, 2);
  t.equal(r.stderr.trimEnd().split('\n').length, 1);
});
