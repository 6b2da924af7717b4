import { performance } from 'node:perf_hooks';

/** Wall-clock milliseconds with sub-ms precision, comparable across the cluster's processes. */
export const clock = (): number => performance.timeOrigin + performance.now();
