#!/usr/bin/env bash
# Mutation testing, scope by scope (stryker.config.mjs says how mutants reach the child processes).
# `npm run mutate` runs all six; `npm run mutate -- dispatch` one. Reports: reports/mutation/.
# The C addon: `npm run mutate:addon` (scripts/mutate-addon.mjs, hand-made mutants).
set -euo pipefail
cd "$(dirname "$0")/.."
scopes=("$@")
[ ${#scopes[@]} -gt 0 ] || scopes=(admission dispatch primary worker endpoint metrics)
for s in "${scopes[@]}"; do MUTATE_SCOPE=$s npx stryker run; done
