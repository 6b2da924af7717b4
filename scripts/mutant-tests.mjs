#!/usr/bin/env node
// Stryker's command runner: runs the tests for the active mutant (__STRYKER_ACTIVE_MUTANT__,
// inherited by every child process the tests start). The mutant's file is found by its id in the
// sandbox's instrumented src/; its tests come from scripts/mutate-scopes.mjs.
//
// One run at a time: stryker.config.mjs starts this under `flock`. With a type checker, Stryker
// hands the checker's slot to a second test runner once checking is done, whatever
// `concurrency` says, and two runs in one sandbox share tap's fixture directories and stop each
// other's acceptors: both fail, and both mutants were counted killed when neither test had
// caught anything.
import { appendFileSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { SCOPES, FILE_TESTS } from './mutate-scopes.mjs';

const scope = process.argv[2];
/** One line per mutant run, written as it goes: Stryker reports only at the end of a scope. */
const runLog = process.argv[3];
const id = process.env.__STRYKER_ACTIVE_MUTANT__;
let tests = SCOPES[scope];
if (!tests) throw new Error(`unknown scope ${scope}`);
let file;
if (id === undefined) {
  // The dry run measures the limit below for every mutant of the scope, so it runs every test
  // any file of the scope uses: a file's list may be longer than the scope's (src/worker/main.ts).
  const own = Object.entries(FILE_TESTS).filter(([f]) => f.startsWith(`src/${scope}/`)).flatMap(([, t]) => t);
  tests = [...new Set([...tests, ...own])];
} else {
  const dir = join('src', scope);
  const needle = `stryMutAct_9fa48("${id}")`;
  file = readdirSync(dir).map((f) => join(dir, f)).find((f) => readFileSync(f, 'utf8').includes(needle));
  if (file && FILE_TESTS[file]) tests = FILE_TESTS[file];
}
// A mutant that timed out had its tests killed, and the acceptors they started live on: stop
// what the sandbox's build still runs before the next mutant (one runs at a time), or each leak
// slows every later run.
// Again after a hang: the last mutant of a run has no next one to do it.
const built = join(process.cwd(), 'dist', 'src');
const inSandbox = process.cwd().includes('.stryker-tmp');
function sweep() {
  for (const pid of inSandbox ? readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid) : []) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(built)) process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone already, or not ours to read
    }
  }
}
sweep();
// A run waiting for the lock spends its own Stryker timeout waiting, so this runner, not Stryker,
// stops a mutant whose tests hang: after 1.5 × the unmutated run (measured in Stryker's dry
// run, which runs the whole scope list) + 20 s, Stryker's own formula. It reports the hang as a
// failure (detected, as Stryker's "timed out" is); Stryker's own limit (timeoutMS) is set past
// two such runs, so a run that waited behind a hanging one is not counted as a hang itself.
const baseline = join(process.cwd(), '.mutant-dry-run-ms');
let limitMs = 0;
try {
  limitMs = 1.5 * Number(readFileSync(baseline, 'utf8')) + 20_000;
} catch {
  // the dry run itself: no limit, it is measured
}
const started = Date.now();
const tap = spawn('npx', ['tap', '--disable-coverage', '--bail', '--reporter=terse', ...tests], { stdio: 'inherit', detached: true });
const timer = limitMs > 0 ? setTimeout(() => {
  console.error(`mutant ${id}: its tests ran past ${Math.round(limitMs / 1000)} s (1.5 × the unmutated run + 20 s): a hang, detected`);
  process.kill(-tap.pid, 'SIGKILL');
}, limitMs) : undefined;
tap.on('exit', (code, signal) => {
  clearTimeout(timer);
  if (id === undefined && code === 0) writeFileSync(baseline, String(Date.now() - started));
  if (signal) sweep();
  const outcome = signal ? 'hang' : code === 0 ? 'survived' : 'killed';
  if (runLog && id !== undefined) appendFileSync(runLog, `${new Date().toISOString()}\t${id}\t${file ?? scope}\t${outcome}\t${Date.now() - started} ms\n`);
  process.exit(signal ? 1 : (code ?? 1));
});
