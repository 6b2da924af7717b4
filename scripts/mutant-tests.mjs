#!/usr/bin/env node
// Stryker's command runner: runs the tests for the active mutant (__STRYKER_ACTIVE_MUTANT__,
// inherited by every child process the tests start). The mutant's file is found by its id in the
// sandbox's instrumented src/; its tests come from scripts/mutate-scopes.mjs.
import { readFileSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { SCOPES, FILE_TESTS } from './mutate-scopes.mjs';

const scope = process.argv[2];
const id = process.env.__STRYKER_ACTIVE_MUTANT__;
let tests = SCOPES[scope];
if (!tests) throw new Error(`unknown scope ${scope}`);
if (id !== undefined) {
  const dir = join('src', scope);
  const needle = `stryMutAct_9fa48("${id}")`;
  const file = readdirSync(dir).map((f) => join(dir, f)).find((f) => readFileSync(f, 'utf8').includes(needle));
  if (file && FILE_TESTS[file]) tests = FILE_TESTS[file];
}
// A mutant that timed out had its tests killed, and the acceptors they started live on: stop
// what the sandbox's build still runs before the next mutant (one runs at a time), or each leak
// slows every later run.
const built = join(process.cwd(), 'dist', 'src');
const inSandbox = process.cwd().includes('.stryker-tmp');
for (const pid of inSandbox ? readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid) : []) {
  try {
    if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(built)) process.kill(Number(pid), 'SIGKILL');
  } catch {
    // gone already, or not ours to read
  }
}
const r = spawnSync('npx', ['tap', '--disable-coverage', '--bail', '--reporter=terse', ...tests], { stdio: 'inherit' });
process.exit(r.status ?? 1);
