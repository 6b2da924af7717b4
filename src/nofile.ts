// The descriptor limit, read where both the primary and the workers need it.
import { readFileSync } from 'node:fs';

/** The soft and hard RLIMIT_NOFILE of this process (Linux /proc), or undefined. */
export function nofile(): { soft: number; hard: number } | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const [soft, hard] = (line ?? '').slice('Max open files'.length).trim().split(/\s+/).map(Number);
    return Number.isFinite(soft) && Number.isFinite(hard) ? { soft: soft!, hard: hard! } : undefined;
  } catch {
    return undefined;
  }
}
