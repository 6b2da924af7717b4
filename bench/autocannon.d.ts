// The slice of autocannon's API the harness uses (it ships no types).
declare module 'autocannon' {
  interface Options {
    url: string;
    connections?: number;
    duration?: number;
    pipelining?: number;
    timeout?: number;
    headers?: Record<string, string>;
  }
  interface Histogram {
    average: number;
    total: number;
    p50: number;
    p99: number;
    p99_9: number;
  }
  interface Result {
    requests: Histogram;
    latency: Histogram;
    non2xx: number;
    errors: number;
    timeouts: number;
    duration: number;
    statusCodeStats?: Record<string, { count: number }>;
  }
  interface Instance {
    on(event: 'reqError', cb: (err: NodeJS.ErrnoException) => void): void;
  }
  function autocannon(opts: Options, cb: (err: Error | null, res: Result) => void): Instance;
  export default autocannon;
}
