// Pretty logs for people: who (slot and pid), and an error's stack as text, not one JSON string.
import t from 'tap';
import { prettyLine } from '../src/log.js';

t.test('a worker line names its slot and pid; a primary line says primary', async (t) => {
  t.match(prettyLine(JSON.stringify({ level: 30, time: 0, pid: 4242, worker: 1, msg: 'worker ready' })), /^00:00:00\.000 INFO  \[w1 4242\] worker ready\n$/);
  t.match(prettyLine(JSON.stringify({ level: 40, time: 0, pid: 7, worker: 0, msg: 'x', slot: 2 })), /^00:00:00\.000 WARN  \[primary 7\] x slot=2\n$/);
});

t.test('an error prints its message inline and its stack as indented text', async (t) => {
  const err = { type: 'Error', message: 'boom', stack: 'Error: boom\n    at f (/app.js:1:1)\n    at g (/app.js:2:2)' };
  const out = prettyLine(JSON.stringify({ level: 50, time: 0, pid: 1, worker: 1, msg: 'handler failed', err }));
  t.equal(out, '00:00:00.000 ERROR [w1 1] handler failed err="boom"\n    Error: boom\n        at f (/app.js:1:1)\n        at g (/app.js:2:2)\n');
  t.notMatch(out, /\\n/, 'no escaped newlines');
});

t.test('not JSON: passed through', async (t) => {
  t.equal(prettyLine('plain'), 'plain');
});
