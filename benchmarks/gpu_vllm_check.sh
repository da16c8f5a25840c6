#!/usr/bin/env bash
# GPU check of the serving path with vLLM (for users' GPU machines). One script, well under 10 minutes:
#   1. installs vLLM from wheels into its own venv (.venv-vllm), so the project's pinned torch stays untouched;
#   2. serves the default shopper (agent/checkpoints/default: SmolLM2-135M-Instruct + a LoRA adapter) with
#      `shop-r1 serve-policy --engine vllm`, which runs `vllm serve BASE --enable-lora --lora-modules shopper=ADAPTER`;
#   3. runs `shop-r1 simulate --policy openai` with SESSIONS sessions at concurrency 8 on the embedded store, with the
#      page-exact schema (vLLM's `structured_outputs` request field: element names as enums of the page's names) and
#      without any schema, and records schema-valid %, page-valid %, steps/s and completion tokens/s of each;
#   4. writes the table to docs/gpu_vllm_check.md.
#
#   bash benchmarks/gpu_vllm_check.sh [MODEL_DIR]              # MODEL_DIR: any model or adapter dir; default shopper
#   ENGINE=transformers bash benchmarks/gpu_vllm_check.sh      # the same flow with our own server (CPU or GPU)
#
# The lent accelerators of this project cannot install vLLM: benchmarks/gpu_check.sh is the part that runs there.
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

MODEL=${1:-agent/checkpoints/default}
echo "model: $MODEL"

echo "== serving with --engine $ENGINE on :$PORT"
"${SHOP[@]}" serve-policy --model "$MODEL" --engine "$ENGINE" --port "$PORT" --served-model-name shopper \
  --max-model-len 8192 --max-batch 8 >"$WORK/server.log" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  if curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null; then break; fi
  if ! kill -0 "$PID" 2>/dev/null; then echo "server exited during start-up:" >&2; tail -50 "$WORK/server.log" >&2; exit 1; fi
  sleep 1
done
curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null || { echo "server did not start in 300 s" >&2; exit 1; }

FIELD=$([ "$ENGINE" = vllm ] && echo structured_outputs || echo response_format)
for mode in structured no-structured; do
  echo "== simulate --policy openai, $SESSIONS sessions at concurrency 8, --$mode (schema field: $FIELD)"
  start=$(date +%s.%N)
  "${SHOP[@]}" simulate --embedded --policy openai --base-url "http://127.0.0.1:$PORT/v1" --model shopper \
    --"$mode" --schema-field "$FIELD" --max-tokens 160 --sessions "$SESSIONS" --concurrency 8 --backend http \
    --max-steps 6 \
    --out "$WORK/run-$mode" --no-report >"$WORK/sim-$mode.log" 2>&1 || { tail -30 "$WORK/sim-$mode.log" >&2; exit 1; }
  end=$(date +%s.%N)
  echo "$start $end" > "$WORK/run-$mode/wall.txt"
done

PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} "$PY" - "$WORK" "$ENGINE" "$OUT" "$MODEL" "$FIELD" <<'PYEOF'
import sys
from pathlib import Path
from agent.runtime.trace import iter_traces
sys.path.insert(0, "benchmarks")
from _gpu_report import served_row
work, engine, out, model, field = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4], sys.argv[5]
lines = [f"# Serving check: `serve-policy --engine {engine}` + `simulate --policy openai`", "",
         "`bash benchmarks/gpu_vllm_check.sh`" + (f" with ENGINE={engine}" if engine != "vllm" else ""), "",
         f"Model: `{model}`; concurrency 8, embedded store, http backend, max 6 steps, 160 completion tokens. "
         f"Structured: the page-exact schema in the `{field}` request field.", "",
         "| schema | steps | schema-valid | page-valid | wall s | steps/s | completion tokens/s |",
         "|---|---|---|---|---|---|---|"]
rows = {}
for mode in ("structured", "no-structured"):
    run = work / f"run-{mode}"
    row = rows[mode] = served_row(run)
    tokens = sum((getattr(s, "usage", None) or {}).get("completion_tokens", 0) for t in iter_traces(run)
                 for s in t.steps)
    lines.append(f"| {'page-exact' if mode == 'structured' else 'none'} | {row['steps']} | "
                 f"{row['schema_valid']:.0%} | {row['page_valid']:.0%} | {row['wall_s']:.1f} | "
                 f"{row['steps_per_s']:.2f} | {tokens / row['wall_s']:.0f} |")
text = "\n".join(lines) + "\n"
out.write_text(text)
print(text)
if rows["structured"]["schema_valid"] < 1.0:
    print("gpu_vllm_check: the page-exact schema did not give 100% schema-valid steps", file=sys.stderr)
    sys.exit(1)
PYEOF
echo "gpu_vllm_check: ok"
