// The app's own graceful shutdown. Under a process manager an app hears SIGTERM (Kubernetes,
// systemd, docker) or SIGINT (PM2's default) and closes its servers. In a worker, signals sent to
// the whole process group (Ctrl-C, a closed terminal, systemd's stop) arrive while the primary is
// draining the workers itself, so the worker ignores them; the listeners an app adds for them are
// kept aside here instead of on the real signal, and called once, at the worker's drain.
import { EventEmitter } from 'node:events';

const SIGNALS = new Set<string | symbol>(['SIGTERM', 'SIGINT', 'SIGHUP']);

export interface ShutdownSignals {
  /**
   * Calls the app's SIGTERM listeners, or its SIGINT ones where it has none (PM2 stops apps with
   * SIGINT). Returns whether there were any: then the app owns its exit.
   */
  emit(onError: (err: unknown) => void): boolean;
}

type Method = 'on' | 'addListener' | 'once' | 'prependListener' | 'prependOnceListener' | 'off' | 'removeListener' | 'removeAllListeners' | 'listeners' | 'rawListeners' | 'listenerCount';
const REDIRECTED: Method[] = ['on', 'addListener', 'once', 'prependListener', 'prependOnceListener', 'off', 'removeListener', 'removeAllListeners', 'listeners', 'rawListeners', 'listenerCount'];
const RETURNS_PROCESS = new Set<Method>(['on', 'addListener', 'once', 'prependListener', 'prependOnceListener', 'off', 'removeListener', 'removeAllListeners']);

/** Ignores the shutdown signals for good and keeps every later listener for them aside. */
export function divertShutdownSignals(): ShutdownSignals {
  const ignore = (): void => {};
  for (const s of SIGNALS) process.on(s as NodeJS.Signals, ignore);
  const kept = new EventEmitter();
  const proc = process as unknown as Record<Method, (...a: unknown[]) => unknown>;
  for (const m of REDIRECTED) {
    const real = proc[m]!;
    proc[m] = function (this: unknown, event: unknown, ...rest: unknown[]) {
      if (!SIGNALS.has(event as string)) return real.call(this, event, ...rest);
      const r = (kept as unknown as Record<Method, (...a: unknown[]) => unknown>)[m]!.call(kept, event, ...rest);
      return RETURNS_PROCESS.has(m) ? process : r;
    };
  }
  let emitted = false;
  return {
    emit(onError) {
      if (emitted) return true;
      const signal = kept.listenerCount('SIGTERM') > 0 ? 'SIGTERM' : kept.listenerCount('SIGINT') > 0 ? 'SIGINT' : undefined;
      if (signal === undefined) return false;
      emitted = true;
      // One listener that throws must not keep the others from running, nor kill the drain.
      for (const fn of kept.listeners(signal) as ((s: string) => unknown)[]) {
        kept.removeListener(signal, fn);
        try {
          const r = fn.call(process, signal) as Promise<unknown> | undefined;
          if (r && typeof r.then === 'function') r.then(undefined, onError);
        } catch (err) {
          onError(err);
        }
      }
      return true;
    },
  };
}
