// Mutation testing (StrykerJS): `npm run mutate` (every scope) or `npm run mutate -- dispatch`.
//
// The tests run the built acceptor (dist/) in child processes, so a mutant must reach them:
// Stryker instruments src/ in its sandbox with every mutant switched off, `buildCommand` compiles
// that into the sandbox's dist/, and the runner names the active mutant in the environment
// (__STRYKER_ACTIVE_MUTANT__), which every child process inherits; the instrumented code reads it
// there. Stryker sees mutant coverage only in the test process, never in its children, so there is
// no coverage analysis: scripts/mutant-tests.mjs runs the tests of the mutant's file (or of its
// scope, scripts/mutate-scopes.mjs) with tap's --bail.
// The runner is `command` running tap itself: Stryker's tap runner reports the test process's own
// (empty) coverage even with coverageAnalysis "off", and every mutant came out "NoCoverage".
import { resolve } from 'node:path';
import { SCOPES } from './scripts/mutate-scopes.mjs';

const scope = process.env.MUTATE_SCOPE ?? 'admission';
if (!SCOPES[scope]) throw new Error(`MUTATE_SCOPE must be one of ${Object.keys(SCOPES).join(', ')}`);

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  mutate: [`src/${scope}/**/*.ts`],
  testRunner: 'command',
  // flock: one test run at a time (scripts/mutant-tests.mjs says why, and how hangs are stopped).
  // The last argument: where each mutant's outcome is logged as it comes (Stryker's own report
  // comes only at the end, so a run stopped early still leaves what it measured).
  commandRunner: { command: `flock .mutant-tests.lock node scripts/mutant-tests.mjs ${scope} '${resolve(`reports/mutation/${scope}.runs.tsv`)}'` },
  coverageAnalysis: 'off',
  buildCommand: 'npx tsc -p tsconfig.json',
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  ignoreStatic: false,
  // One checker and one runner (the runner serialises the second runner Stryker adds after
  // checking): tap runs two test files at once, and this machine has two cores; more would slow
  // the timing-bound tests until they fail for the wrong reason and count as kills.
  concurrency: 1,
  // Past what a run that waited behind a hanging one can take (the runner stops hangs itself).
  timeoutMS: 400_000,
  incremental: true,
  incrementalFile: `reports/mutation/${scope}.incremental.json`,
  reporters: ['clear-text', 'json', 'progress-append-only'],
  jsonReporter: { fileName: `reports/mutation/${scope}.json` },
  thresholds: { high: 90, low: 80, break: null },
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
};
