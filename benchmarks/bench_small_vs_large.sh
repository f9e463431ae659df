#!/usr/bin/env bash
# The headline comparison of README "Does the small model win?": 0.5B + Algorithm 1 against
# 0.5B and 1.5B chain-of-thought, on the same items, then the report (table + plots).
#   SMALL_URL=http://127.0.0.1:8000/v1 LARGE_URL=http://127.0.0.1:8001/v1 LIMIT=30 \
#     benchmarks/bench_small_vs_large.sh
# Resumable: run it again after a stop and every bench continues where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
SMALL=${SMALL:-qwen2.5-coder-0.5b-instruct}
LARGE=${LARGE:-qwen2.5-coder-1.5b-instruct}
SMALL_URL=${SMALL_URL:?set SMALL_URL to the 0.5B server (…/v1)}
LIMIT=${LIMIT:-30}
CONC=${CONC:-8}
SUITES=${SUITES:-gsm8k svamp}
OUT=${OUT:-results/bench}
for suite in $SUITES; do
  for strategy in algorithm1 cot; do
    lottery bench --suite "$suite" --strategy "$strategy" --model "$SMALL" --base-url "$SMALL_URL" \
      --limit "$LIMIT" --concurrency "$CONC" --set request_timeout=3000 \
      --out "$OUT/$suite-$SMALL-$strategy"
  done
  if [ -n "${LARGE_URL:-}" ]; then
    lottery bench --suite "$suite" --strategy cot --model "$LARGE" --base-url "$LARGE_URL" \
      --limit "$LIMIT" --concurrency "$CONC" --set request_timeout=3000 \
      --out "$OUT/$suite-$LARGE-cot"
  fi
done
lottery bench report "$OUT" --out "$OUT"
