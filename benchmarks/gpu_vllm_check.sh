#!/usr/bin/env bash
# GPU check of the serving path (issue: vLLM as the production policy server). One script, well under 10 minutes:
#   1. installs vLLM from wheels into its own venv (.venv-vllm), so the project's pinned torch stays untouched;
#   2. builds a small local model with `shop-r1 model init` (tiny Qwen2 + byte-level BPE, trained on 20 sessions);
#   3. serves it with `shop-r1 serve-policy --engine vllm` (structured outputs with the action JSON schema);
#   4. runs `shop-r1 simulate --policy openai` with 8 concurrent sessions against the embedded store, with structured
#      outputs on and off, and records completion tokens/s and the schema-valid rate of each;
#   5. writes the table to docs/gpu_vllm_check.md.
#
#   bash benchmarks/gpu_vllm_check.sh [MODEL_DIR]
#   ENGINE=transformers bash benchmarks/gpu_vllm_check.sh   # the same flow on CPU with our own server (no GPU)
#
# Exit codes: 0 ok, 2 no GPU (or no way to install vLLM), 1 a check failed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
SHOP=(.venv/bin/shop-r1)
ENGINE=${ENGINE:-vllm}
PORT=${PORT:-8011}
SESSIONS=${SESSIONS:-8}
OUT=${OUT:-docs/gpu_vllm_check.md}
WORK=$(mktemp -d)
[ -x "$PY" ] || { echo "gpu_vllm_check: run 'bash scripts/dev.sh setup' first (no .venv)" >&2; exit 2; }

if [ "$ENGINE" = vllm ]; then
  if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu_vllm_check: no NVIDIA GPU here (nvidia-smi missing or sees no device); nothing to check." >&2
    echo "gpu_vllm_check: ENGINE=transformers runs the same flow on CPU." >&2
    exit 2
  fi
  nvidia-smi -L
  if [ ! -x .venv-vllm/bin/vllm ]; then
    echo "== installing vLLM from wheels into .venv-vllm"
    python3 -m venv .venv-vllm
    .venv-vllm/bin/pip install -q --upgrade pip
    .venv-vllm/bin/pip install -q vllm || { echo "gpu_vllm_check: pip install vllm failed" >&2; exit 2; }
  fi
  export PATH="$PWD/.venv-vllm/bin:$PATH"   # serve-policy --engine vllm finds this `vllm`
  .venv-vllm/bin/vllm --version || true
fi

MODEL=${1:-}
if [ -z "$MODEL" ]; then
  echo "== building a small model (shop-r1 model init --preset tiny)"
  "${SHOP[@]}" simulate --embedded --policy scripted --sessions 20 --backend http --out "$WORK/corpus" --no-report >/dev/null
  "${SHOP[@]}" data build "$WORK/corpus" --out "$WORK/data" --max-context-tokens 1024 >/dev/null
  "${SHOP[@]}" model init --preset tiny --corpus "$WORK/data" --out "$WORK/model" >/dev/null
  MODEL="$WORK/model"
fi
echo "model: $MODEL"

echo "== serving with --engine $ENGINE on :$PORT"
"${SHOP[@]}" serve-policy --model "$MODEL" --engine "$ENGINE" --port "$PORT" --served-model-name shopper \
  --max-model-len 4096 --max-batch 8 >"$WORK/server.log" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  if curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null; then break; fi
  if ! kill -0 "$PID" 2>/dev/null; then echo "server exited during start-up:" >&2; tail -50 "$WORK/server.log" >&2; exit 1; fi
  sleep 1
done
curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null || { echo "server did not start in 300 s" >&2; exit 1; }

for mode in structured no-structured; do
  echo "== simulate --policy openai, $SESSIONS sessions at concurrency 8, --$mode"
  start=$(date +%s.%N)
  "${SHOP[@]}" simulate --embedded --policy openai --base-url "http://127.0.0.1:$PORT/v1" --model shopper \
    --"$mode" --max-tokens 160 --sessions "$SESSIONS" --concurrency 8 --backend http --max-steps 6 \
    --out "$WORK/run-$mode" --no-report >"$WORK/sim-$mode.log" 2>&1 || { tail -30 "$WORK/sim-$mode.log" >&2; exit 1; }
  end=$(date +%s.%N)
  echo "$start $end" > "$WORK/run-$mode/wall.txt"
done

"$PY" - "$WORK" "$ENGINE" "$OUT" "$MODEL" <<'PYEOF'
import json, sys
from pathlib import Path
from agent.trace import iter_traces
work, engine, out, model = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4]
rows = []
for mode in ("structured", "no-structured"):
    run = work / f"run-{mode}"
    start, end = map(float, (run / "wall.txt").read_text().split())
    steps = [s for t in iter_traces(run) for s in t.steps]
    parsed = sum(s.action is not None for s in steps)
    tokens = sum((getattr(s, "usage", None) or {}).get("completion_tokens", 0) for s in steps)
    policy_s = sum(s.timing_ms.get("policy", 0.0) for s in steps) / 1000
    rows.append((mode, len(steps), parsed, tokens, end - start, policy_s))
lines = [f"# Serving check: `serve-policy --engine {engine}` + `simulate --policy openai`", "",
         "`bash benchmarks/gpu_vllm_check.sh`" + (" with ENGINE=transformers (CPU)" if engine != "vllm" else ""), "",
         f"Model: `shop-r1 model init --preset tiny` (random init, {model}); 8 concurrent sessions, embedded store, "
         "http backend, max 6 steps, 160 completion tokens.", "",
         "| response_format | steps | schema-valid | schema-valid rate | completion tokens | wall s | tokens/s |",
         "|---|---|---|---|---|---|---|"]
for mode, n, ok, tok, wall, _ in rows:
    lines.append(f"| {'json_schema' if mode == 'structured' else 'none'} | {n} | {ok} | {ok / max(n, 1):.0%} |"
                 f" {tok} | {wall:.1f} | {tok / wall:.0f} |")
text = "\n".join(lines) + "\n"
out.write_text(text)
print(text)
s = rows[0]
if engine == "vllm" and s[2] < s[1]:
    print("gpu_vllm_check: structured outputs did not give 100% schema-valid steps", file=sys.stderr)
    sys.exit(1)
PYEOF
echo "gpu_vllm_check: ok"
