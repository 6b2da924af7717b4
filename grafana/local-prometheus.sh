#!/usr/bin/env bash
# Starts a local Prometheus (Debian's `prometheus` package) that scrapes a running acceptor, with
# the alert rules loaded. Usage: npm run prometheus -- [--target 127.0.0.1:9464] [--port 9090] [--token T]
set -euo pipefail
target=127.0.0.1:9464 port=9090 token=""
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --token) token=$2; shift 2 ;;
    *) echo "usage: $0 [--target host:port] [--port 9090] [--token T]" >&2; exit 2 ;;
  esac
done
command -v prometheus >/dev/null || { echo "prometheus is not installed: apt-get install prometheus" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d -t acceptor-prometheus-XXXXXX)
cp "$here/alerts.yml" "$dir/"
auth=""
[ -n "$token" ] && auth=$'    authorization:\n      credentials: '"$token"
cat > "$dir/prometheus.yml" <<YML
global: { scrape_interval: 5s, evaluation_interval: 5s }
rule_files: [alerts.yml]
scrape_configs:
  - job_name: cluster-acceptor
$auth
    static_configs:
      - targets: ['$target']
YML
echo "Prometheus on http://127.0.0.1:$port scraping $target (data in $dir); Ctrl-C stops it." >&2
exec prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" --web.listen-address="127.0.0.1:$port"
