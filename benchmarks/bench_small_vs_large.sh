#!/usr/bin/env bash
# The headline comparison of docs/benchmarks.md, "Does the small model win?": 0.5B +
# Algorithm 1 against 0.5B and 1.5B chain-of-thought on the same items (HotpotQA: also the
# 1.5B with the same single retrieval, and closed-book), the ablations that explain GSM8K and
# SVAMP (no divide; no divide with a 5-answer self-consistency vote per solve; the same vote
# checked against 5 executed programs, or on ProofWriter against z3 programs), then the report.
#   SMALL_URL=http://127.0.0.1:8000/v1 LARGE_URL=http://127.0.0.1:8001/v1 \
#     benchmarks/bench_small_vs_large.sh
# Items per suite: LIMITS (default: what the docs/benchmarks.md table ran); LIMIT=N for
# every suite.
# Resumable: run it again after a stop and every bench continues where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
SMALL=${SMALL:-qwen2.5-coder-0.5b-instruct}
LARGE=${LARGE:-qwen2.5-coder-1.5b-instruct}
SMALL_URL=${SMALL_URL:?set SMALL_URL to the 0.5B server (…/v1)}
LIMITS=${LIMITS:-"gsm8k=30 svamp=30 proofwriter=20 logicaldeduction=20 hotpot=15"}
CONC=${CONC:-4}
OUT=${OUT:-results/bench}
bench() {  # bench SUITE MODEL URL NAME [extra lottery-bench args...]
  local suite=$1 model=$2 url=$3 name=$4; shift 4
  lottery bench --suite "$suite" --model "$model" --base-url "$url" --limit "$limit" \
    --concurrency "$CONC" --set request_timeout=3000 --out "$OUT/$suite-$model-$name" "$@"
}
for pair in $LIMITS; do
  suite=${pair%%=*}; limit=${LIMIT:-${pair#*=}}
  bench "$suite" "$SMALL" "$SMALL_URL" algorithm1 --strategy algorithm1
  bench "$suite" "$SMALL" "$SMALL_URL" cot --strategy cot
  if [ "$suite" = gsm8k ]; then
    bench "$suite" "$SMALL" "$SMALL_URL" algorithm1-no-divide --strategy algorithm1 --ablate divide
  fi
  if [ "$suite" = gsm8k ] || [ "$suite" = svamp ]; then  # several calls: a 5-answer vote per solve
    bench "$suite" "$SMALL" "$SMALL_URL" algorithm1-no-divide-sc5 --strategy algorithm1 \
      --ablate divide --set solve_samples=5
    bench "$suite" "$SMALL" "$SMALL_URL" algorithm1-no-divide-sc5-checked-python \
      --strategy algorithm1 --ablate divide --set solve_samples=5 --set solve_check=python
  fi
  if [ "$suite" = proofwriter ]; then  # the same, checked by the z3 logic solver
    bench "$suite" "$SMALL" "$SMALL_URL" algorithm1-no-divide-sc5-checked-logic \
      --strategy algorithm1 --ablate divide --set solve_samples=5 --set solve_check=logic
  fi
  if [ -n "${LARGE_URL:-}" ]; then
    bench "$suite" "$LARGE" "$LARGE_URL" cot --strategy cot
    if [ "$suite" = hotpot ]; then
      bench "$suite" "$LARGE" "$LARGE_URL" cot-rag --strategy cot --rag
    fi
  fi
done
lottery bench report "$OUT" --out "$OUT"
