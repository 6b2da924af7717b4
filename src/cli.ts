#!/usr/bin/env node
// `acceptor`: options from flags and ACCEPTOR_* env. Exit 2 for a bad option, 1 for a failed
// start (bind, resolve), 0 after a clean drain on SIGTERM / SIGINT. SIGHUP reloads.
import { helpText, OptionError, parseArgv } from './options.js';
import { startAcceptor, type Acceptor } from './primary/acceptor.js';
import { VERSION } from './version.js';

function fail(code: number, message: string): never {
  process.stderr.write(`acceptor: ${message}\n`);
  process.exit(code);
}

let acceptor: Acceptor;
try {
  const parsed = parseArgv(process.argv.slice(2));
  if (parsed === 'help') {
    process.stdout.write(helpText());
    process.exit(0);
  }
  if (parsed === 'version') {
    process.stdout.write(`${VERSION}\n`);
    process.exit(0);
  }
  acceptor = await startAcceptor(parsed);
} catch (err) {
  if (err instanceof OptionError) fail(2, err.message);
  fail(1, (err as Error).message);
}

// A handler that cannot load before any worker was ready: one line, a clean stop, exit 1.
acceptor.ready.catch((err: Error) => {
  process.stderr.write(`acceptor: ${err.message}\n`);
  void acceptor.close().then(() => process.exit(1));
});

let signals = 0;
const stop = (signal: NodeJS.Signals): void => {
  if (++signals > 1) {
    acceptor.log.warn({ signal }, 'second signal: exiting without waiting for the drain');
    process.exit(1);
  }
  acceptor.log.info({ signal }, 'signal received');
  void acceptor.close().then((code) => process.exit(code));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('SIGHUP', () => void acceptor.reload());

// Started by npm (`npx acceptor`, `npm exec`, `npm start`): npm runs it through `sh -c` and, sent
// SIGTERM, ends without passing the signal on, leaving the acceptor serving, orphaned. Its parent
// changing (re-parented to init) means npm is gone: stop as on SIGTERM.
if (process.env.npm_command !== undefined) {
  const parent = process.ppid;
  const watch = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(watch);
    acceptor.log.warn({ parent, npmCommand: process.env.npm_command }, 'npm, which started the acceptor, is gone: stopping');
    stop('SIGTERM');
  }, 500);
  watch.unref();
}
