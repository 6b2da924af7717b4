// Benchmark handler: the smallest useful HTTP answer.
const OK = Buffer.from('ok\n');
export default function hello(req, res) {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': OK.length });
  res.end(OK);
}
