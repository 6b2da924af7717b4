// Benchmark handler: CPU_MS (default 2) of busy CPU per request, like real work.
const OK = Buffer.from('ok\n');
const ms = Number(process.env.CPU_MS ?? 2);
export default function cpu(req, res) {
  const end = performance.now() + ms;
  while (performance.now() < end);
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': OK.length });
  res.end(OK);
}
