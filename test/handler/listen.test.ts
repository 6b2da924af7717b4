// An app's own listen(): served on the acceptor's endpoint without binding; anything the acceptor
// cannot serve fails the start with one line; an app that never listens fails after --start-timeout.
import t, { type Test } from 'tap';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { fixture, run, start, tagged, workerPids, type LogLine } from '../helpers/cli.js';
import { get } from '../helpers/http.js';
import { supportsReusePort } from '../../src/options.js';
import { TCP_LISTEN } from '../../src/metrics/kernel.js';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer as createNetServer, type Server, type Socket } from 'node:net';
import { adopt } from '../../src/handler/listen.js';

async function failedStart(t: Test, app: string, args: string[] = [], env: Record<string, string> = {}): Promise<{ code: number | null; line: string; lines: LogLine[]; left: number[] }> {
  const acc = run(['--workers', '2', ...args, fixture(`apps/${app}`)], { wait: 'none', env });
  t.teardown(() => acc.stop('SIGKILL'));
  const { code } = await acc.exited;
  return { code, line: acc.stderr().trimEnd(), lines: acc.lines, left: tagged(acc.tag) };
}

t.test('a listen on another port fails the start, naming both ports: it is not bound behind the acceptor', async (t) => {
  const r = await failedStart(t, 'other-port.mjs', ['--host', '127.0.0.1']);
  const port = Number(r.lines.find((l) => l.msg === 'listening')?.port);
  t.equal(r.code, 1);
  t.equal(r.line, `acceptor: cannot serve app ${fixture('apps/other-port.mjs')}: the app listens on port 3999, but the acceptor serves port ${port}: listen on process.env.PORT (the acceptor sets it), or start the acceptor with --port 3999`);
  t.same(r.left, [], 'no process left');
});

t.test('a listen on a Unix socket fails the start; the socket is never made', async (t) => {
  const r = await failedStart(t, 'unix-socket.mjs', ['--host', '127.0.0.1']);
  const port = Number(r.lines.find((l) => l.msg === 'listening')?.port);
  t.equal(r.code, 1);
  t.equal(r.line, `acceptor: cannot serve app ${fixture('apps/unix-socket.mjs')}: the app listens on the Unix socket /tmp/acceptor-test-app.sock, but the acceptor serves TCP 127.0.0.1:${port}: listen on process.env.PORT`);
  t.notOk(existsSync('/tmp/acceptor-test-app.sock'));
});

/** Milliseconds from the primary's `listening` line to the worker's fatal one. */
const failedAfter = (lines: LogLine[]): number => Number(lines.find((l) => l.level === 60 && Number(l.worker) > 0)?.time) - Number(lines.find((l) => l.msg === 'listening')?.time);

t.test('an app that exports nothing and never listens fails after --start-timeout, not before', async (t) => {
  const r = await failedStart(t, 'never-listens.mjs', ['--start-timeout', '1500ms']);
  t.equal(r.code, 1);
  t.equal(r.line, `acceptor: cannot load handler ${fixture('apps/never-listens.mjs')}: the app did not start within 1.5s (--start-timeout): it exports nothing and has not called listen(); call listen() on process.env.PORT, or export default a server, a (req, res) listener or an object with fetch(request)`);
  const ms = failedAfter(r.lines);
  t.ok(ms >= 1500 && ms < 11_500, `failed ${ms} ms after the primary listened`);
});

t.test('an import that never settles fails after --start-timeout', async (t) => {
  const r = await failedStart(t, 'hangs-at-import.mjs', ['--start-timeout', '1s']);
  t.equal(r.code, 1);
  t.equal(r.line, `acceptor: cannot load handler ${fixture('apps/hangs-at-import.mjs')}: the app did not start within 1s (--start-timeout): its import has not finished and it has not called listen() (a top-level await still waiting?)`);
  const ms = failedAfter(r.lines);
  t.ok(ms >= 1000 && ms < 11_000, `failed ${ms} ms after the primary listened`);
});

t.test('a script that listens after its import settled is served', async (t) => {
  const acc = await start(['--workers', '1', fixture('apps/listens-later.mjs')], { env: { LISTEN_AFTER_MS: '500' } });
  t.teardown(() => acc.stop('SIGKILL'));
  t.equal((await get(acc.port, '/')).body, 'later\n');
  t.match(acc.lines.find((l) => l.msg === 'app loaded'), { form: 'server (listen())' });
});

t.test('the app sees PORT and HOST; its server reports the endpoint, listening, and its callback runs', async (t) => {
  const acc = await start(['--workers', '1', '--host', '127.0.0.1', fixture('apps/env-echo.mjs')]);
  t.teardown(() => acc.stop('SIGKILL'));
  t.same(JSON.parse((await get(acc.port, '/')).body), { PORT: String(acc.port), HOST: '127.0.0.1', address: { address: '127.0.0.1', family: 'IPv4', port: acc.port }, listening: true });
  t.ok(acc.lines.some((l) => l.raw === true && l.msg === 'app: listen callback'));
});

t.test('a second server on the same port and address gets EADDRINUSE, as under Node; one on another address listens unfed', async (t) => {
  const same = await start(['--workers', '1', fixture('apps/two-servers.mjs')]);
  t.teardown(() => same.stop('SIGKILL'));
  t.equal((await get(same.port, '/')).body, 'first\n');
  t.ok(same.lines.some((l) => l.raw === true && l.msg === 'app: second server: EADDRINUSE'));
  const two = await start(['--workers', '1', '--host', '127.0.0.1', fixture('apps/two-addresses.mjs')]);
  t.teardown(() => two.stop('SIGKILL'));
  t.equal((await get(two.port, '/')).body, '127.0.0.1 of ["127.0.0.1","::1"]\n', 'both listened; the first serves');
  t.match(two.lines.find((l) => /a second server/.test(String(l.msg))), { host: '::1' });
});

/** Inodes of every listening TCP socket process `pid` holds, on any port. */
function listening(pid: number): string[] {
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === TCP_LISTEN) inodes.add(f[9]!);
    }
  }
  return readdirSync(`/proc/${pid}/fd`)
    .map((fd) => {
      try {
        return /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
      } catch {
        return undefined;
      }
    })
    .filter((i): i is string => i !== undefined && inodes.has(i));
}

const STRATEGIES: [string, number][] = [['handoff', 0], ['round-robin', 0], ['shared', 1], ...(supportsReusePort() ? [['reuseport', 1] as [string, number]] : [])];
for (const [strategy, own] of STRATEGIES) {
  t.test(`${strategy}: an app's listen binds nothing in its worker; the worker holds ${own} listening socket(s), the acceptor's`, async (t) => {
    const acc = await start(['--workers', '1', '--strategy', strategy, '--host', '127.0.0.1', fixture('apps/express.mjs')]);
    t.teardown(() => acc.stop('SIGKILL'));
    t.equal((await get(acc.port, '/')).body, 'express\n');
    t.equal(listening(workerPids(acc)[0]!).length, own);
  });
}

/** A real connection's server side, as net.Server's accept made it. */
async function accepted(t: Test): Promise<Socket> {
  const server = createNetServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = connect((server.address() as { port: number }).port, '127.0.0.1');
  const socket = await new Promise<Socket>((r) => server.once('connection', r));
  t.teardown(() => (client.destroy(), socket.destroy(), server.close()));
  return socket;
}

t.test("adopt: a connection gets what its server's own accept gives it, from that server's options", async (t) => {
  const cases: [string, Server, boolean, [boolean, unknown[][], unknown[][]]][] = [
    // node:http asks for no Nagle delay and a half-open socket by default.
    ['node:http', createHttpServer(), true, [true, [[true]], []]],
    ['node:http behind the TLS server', createHttpServer(), false, [false, [[true]], []]],
    ['node:http with noDelay: false', createHttpServer({ noDelay: false }), true, [true, [], []]],
    // The server keeps the delay in seconds; the socket takes milliseconds.
    ['node:net with keepAlive', createNetServer({ keepAlive: true, keepAliveInitialDelay: 30_000 }), true, [false, [], [[true, 30_000]]]],
    ['node:net with allowHalfOpen', createNetServer({ allowHalfOpen: true }), true, [true, [], []]],
    ['node:net, its defaults', createNetServer(), true, [false, [], []]],
  ];
  for (const [name, server, halfOpen, expected] of cases) {
    const socket = await accepted(t);
    // Recorded, and still made: the real calls run.
    const noDelay = t.capture(socket, 'setNoDelay', socket.setNoDelay);
    const keepAlive = t.capture(socket, 'setKeepAlive', socket.setKeepAlive);
    adopt(server, socket, halfOpen);
    t.same([socket.allowHalfOpen, noDelay.args(), keepAlive.args()], expected, name);
  }
});

t.test('adopt: pauseOnConnect and highWaterMark only where the server owns the socket; behind the TLS server it reads on, at the default size', async (t) => {
  const server = createNetServer({ pauseOnConnect: true, highWaterMark: 1234 });
  const direct = await accepted(t);
  adopt(server, direct, true);
  const behind = await accepted(t);
  const size = behind.readableHighWaterMark;
  adopt(server, behind, false);
  const state = (s: Socket): unknown[] => [s.readableFlowing, (s as unknown as { _handle: { reading: boolean } })._handle.reading, s.readableHighWaterMark, s.writableHighWaterMark];
  t.same(state(direct), [false, false, 1234, 1234]);
  t.same(state(behind), [null, true, size, size]);
  t.not(size, 1234);
});
