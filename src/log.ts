// Structured logs: pino JSON on stdout, one line per event, `worker` on every line
// (0 = the primary, 1..N = the worker slot). `pretty` is for people at a terminal only.
import { pino, type Logger, type DestinationStream } from 'pino';
import type { LogFormat, LogLevel } from './options.js';

export type { Logger };

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const SKIP = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'worker']);

/** One JSON line in, one readable line out: `12:00:00.123 INFO  [w1] msg key=value`. */
export function prettyLine(json: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = new Date(Number(o.time)).toISOString().slice(11, 23);
  // The pid tells an old worker from its replacement during a reload (both are slot 1).
  const who = `${o.worker === 0 ? 'primary' : `w${String(o.worker)}`} ${String(o.pid)}`;
  let stack = '';
  const rest = Object.entries(o)
    .filter(([k]) => !SKIP.has(k))
    .map(([k, v]) => {
      // An error prints its message inline and its stack as text below, not as one JSON string.
      const e = v as { message?: unknown; stack?: unknown } | null;
      if (e && typeof e === 'object' && typeof e.stack === 'string') {
        stack += `\n${e.stack.replace(/^/gm, '    ')}`;
        return `${k}=${JSON.stringify(String(e.message ?? ''))}`;
      }
      return `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`;
    })
    .join(' ');
  return `${time} ${(LEVEL_NAMES[Number(o.level)] ?? String(o.level)).padEnd(5)} [${who}] ${String(o.msg ?? '')}${rest ? ' ' + rest : ''}${stack}\n`;
}

function prettyStream(): DestinationStream {
  return { write: (line: string) => void process.stdout.write(prettyLine(line.trimEnd())) };
}

export function createLogger(worker: number, level: LogLevel, format: LogFormat): Logger {
  // Synchronous writes: a crashing worker's last line must reach stdout before it exits.
  const dest = format === 'pretty' ? prettyStream() : pino.destination({ dest: 1, sync: true });
  return pino({ level, base: { pid: process.pid, worker } }, dest);
}
