#!/usr/bin/env bash
# GPU check of the policy stack: the transformers engine on CUDA (bf16), then `serve-policy --engine vllm` with
# structured outputs, driven by OpenAIPolicy. With guided decoding even a random model's outputs follow the schema.
#
#   benchmarks/gpu_vllm_check.sh [MODEL_DIR]     # default: a tiny random Qwen2 with head size 64, built here
#
# Exit codes: 0 ok, 2 no GPU, 3 no vLLM (the CUDA part still ran), 1 a check failed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
PORT=${PORT:-8011}

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu_vllm_check: no NVIDIA GPU here (nvidia-smi missing or sees no device); nothing to check." >&2
  exit 2
fi
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_vllm_check: nvidia-smi sees a GPU but torch.cuda.is_available() is False (CPU-only torch?)." >&2
  exit 2
fi
nvidia-smi -L

MODEL=${1:-}
if [ -z "$MODEL" ]; then
  MODEL=$(mktemp -d)/tiny-qwen2
  "$PY" - "$MODEL" <<'EOF'
import sys
sys.path.insert(0, "tests/agent")
from tiny_model import build_tiny_model
build_tiny_model(sys.argv[1], hidden_size=256, num_attention_heads=4)
EOF
fi
echo "model: $MODEL"

echo "== transformers engine on CUDA"
"$PY" benchmarks/policy_throughput.py --model "$MODEL" --device cuda --max-new-tokens 64 --batch-sizes 1,8,32

if ! "$PY" -c "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('vllm') else 1)" \
   && ! command -v vllm >/dev/null 2>&1; then
  echo "gpu_vllm_check: vLLM is not installed (pip install vllm); skipped the vLLM part." >&2
  exit 3
fi

echo "== vLLM with structured outputs on :$PORT"
LOG=$(mktemp)
"$PY" -c "import typer; from agent.server import serve_policy_command; typer.run(serve_policy_command)" \
  --model "$MODEL" --engine vllm --port "$PORT" --served-model-name shopper --max-model-len 4096 >"$LOG" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  if curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null; then break; fi
  if ! kill -0 "$PID" 2>/dev/null; then echo "vLLM exited during start-up:" >&2; tail -50 "$LOG" >&2; exit 1; fi
  sleep 1
done
curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null || { echo "vLLM did not start in 300 s" >&2; tail -50 "$LOG" >&2; exit 1; }

"$PY" - "$PORT" <<'EOF'
import asyncio, re, sys, time
sys.path.insert(0, "tests/agent")
from test_policies_llm import make_request
from agent.policies.openai_policy import OpenAIPolicy, OpenAIPolicyConfig

async def main() -> int:
    policy = OpenAIPolicy(OpenAIPolicyConfig(base_urls=(f"http://127.0.0.1:{sys.argv[1]}/v1",), model="shopper",
                                             max_tokens=256, concurrency=32, seed=0))
    start = time.perf_counter()
    responses = await policy.act([make_request(i) for i in range(32)])
    wall = time.perf_counter() - start
    await policy.close()
    ok = sum(r.step is not None for r in responses)
    # A random model under the grammar writes valid JSON, but its rationale string may run past max_tokens; what
    # must hold is that every output follows the schema from its first character.
    prefix = re.compile(r'\s*\{\s*"rationale"\s*:\s*"')
    guided = sum(bool(prefix.match(r.raw)) for r in responses)
    print(f"vLLM structured: {ok}/32 parseable, {guided}/32 schema-shaped, in {wall:.2f}s; "
          f"structured still on: {policy.structured}; errors: {[r.error for r in responses if r.error][:3]}")
    return 0 if guided == 32 and policy.structured and not any((r.error or "").startswith("server:")
                                                                for r in responses) else 1

sys.exit(asyncio.run(main()))
EOF
echo "gpu_vllm_check: ok"
