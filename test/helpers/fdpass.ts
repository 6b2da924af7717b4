// The fdpass addon for tests that drive it, or the transport over it, in the test's own process:
// a stand-in worker on the channel's other end, and descriptors whose identity can be checked.
import { spawn, type ChildProcess } from 'node:child_process';
import { fstatSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadFdpass, type FdpassAddon } from '../../src/native/fdpass.js';
import { fixture, until } from './cli.js';

const loaded = loadFdpass();
if (!('addon' in loaded)) throw new Error(`the fdpass addon must be built for these tests: ${loaded.error}`);
export const addon: FdpassAddon = loaded.addon;

export interface Child {
  proc: ChildProcess;
  lines: Record<string, unknown>[];
  /** Resolves once it has exited and its stdout is closed. */
  gone: Promise<void>;
  next(pred: (l: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>;
}

/** test/fixtures/fdpass-child.mjs with the channel's worker end `fd` as its fd 4, as a worker has it. */
export function child(fd: number, env: Record<string, string>, prefix: string[] = []): Child {
  const [cmd, args] = prefix.length ? [prefix[0]!, [...prefix.slice(1), process.execPath, fixture('fdpass-child.mjs')]] : [process.execPath, [fixture('fdpass-child.mjs')]];
  const proc = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit', 'ignore', fd] });
  const lines: Record<string, unknown>[] = [];
  let buf = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    for (let i; (i = buf.indexOf('\n')) >= 0; buf = buf.slice(i + 1)) lines.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>);
  });
  const gone = new Promise<void>((r) => proc.once('close', () => r()));
  return { proc, lines, gone, next: (pred, ms = 10_000) => until(() => lines.find(pred), ms) as Promise<Record<string, unknown>> };
}

/** `n` descriptors of distinct files, and their inodes: what arrives must be the same files. */
export function files(dir: string, n: number): { fds: Int32Array; inodes: number[] } {
  const fds = new Int32Array(n);
  const inodes: number[] = [];
  for (let i = 0; i < n; i++) {
    const p = join(dir, String(i));
    writeFileSync(p, '');
    fds[i] = openSync(p, 'r');
    inodes.push(fstatSync(fds[i]!).ino);
  }
  return { fds, inodes };
}

/** 0, 1, … n-1: the accept times sent with the descriptors, here their sequence numbers. */
export const seq = (n: number): Float64Array => Float64Array.from({ length: n }, (_, i) => i);
