// The kernel listen-queue reader, against a socket that listens and never accepts.
import t from 'tap';
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { listenQueueDepth, listenOverflows, kernelQueuesReadable } from '../../src/metrics/kernel.js';
import { fixture, until } from '../helpers/cli.js';

const linux = process.platform === 'linux' && kernelQueuesReadable();

t.test('reads the accept queue of a listening socket that never accepts', { skip: linux ? false : `no /proc/net/tcp on ${process.platform}` }, async (t) => {
  const BACKLOG = 5;
  const child = spawn(process.execPath, [fixture('listen-no-accept.mjs')], { env: { ...process.env, BACKLOG: String(BACKLOG), HOLD_MS: '8000' }, stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => child.kill('SIGKILL'));
  const port = Number(await new Promise<string>((r) => child.stdout!.once('data', (d: Buffer) => r(d.toString()))));
  const clients: Socket[] = [];
  t.teardown(() => clients.forEach((c) => c.destroy()));
  const open = (n: number): void => {
    for (let i = 0; i < n; i++) clients.push(connect(port, '127.0.0.1').on('error', () => {}));
  };

  t.equal(await listenQueueDepth(port), 0, 'empty queue');
  open(3);
  t.equal(await until(async () => ((await listenQueueDepth(port)) === 3 ? 3 : 0), 5000), 3, 'three waiting');
  const before = listenOverflows()!;
  open(10);
  // Linux holds backlog + 1; the rest of the SYNs are dropped and counted as overflows.
  t.equal(await until(async () => ((await listenQueueDepth(port)) === BACKLOG + 1 ? BACKLOG + 1 : 0), 5000), BACKLOG + 1, 'full at backlog + 1');
  await until(() => listenOverflows()! > before, 5000);
  t.ok(listenOverflows()! > before, 'ListenOverflows rose');
  t.equal(await listenQueueDepth(1), undefined, 'no socket listening on port 1: undefined');
});
