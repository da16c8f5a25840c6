"""The report of `benchmarks/gpu_check.sh`: served steps (schema-valid, page-valid, steps/s) and one GRPO step.

    python benchmarks/_gpu_report.py WORK DEVICE OUT.md
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from agent.runtime.trace import iter_traces

SERVER_ERROR = "unparseable policy output: server:"
"""How a session records a request the server never answered (a timeout, a refused connection)."""


def served_row(run: Path) -> dict[str, float]:
    """Steps of the served run: of those the server answered, the share parsed as one shopper step (schema-valid) and
    accepted by the env on the page it named (page-valid); requests it never answered (timeouts on a busy machine)
    are counted apart, since they say nothing about the schema; and steps per second of wall time."""
    start, end = map(float, (run / "wall.txt").read_text().split())
    steps = [s for t in iter_traces(run) for s in t.steps]
    if not steps:
        raise SystemExit(f"gpu_check: Expect steps in {run}, actually: none")
    answered = [s for s in steps if not (s.error or "").startswith(SERVER_ERROR)]
    if not answered:
        raise SystemExit(f"gpu_check: Expect the server to answer some of {len(steps)} steps, actually: none "
                         f"({steps[0].error})")
    parsed = sum(s.action is not None for s in answered)
    valid = sum(s.action is not None and s.valid for s in answered)
    return {"steps": len(steps), "schema_valid": parsed / len(answered), "page_valid": valid / len(answered),
            "wall_s": end - start, "steps_per_s": len(steps) / (end - start),
            "server_errors": len(steps) - len(answered)}


def grpo_row(rl: Path) -> dict[str, float]:
    start, end = map(float, (rl / "wall.txt").read_text().split())
    rows = [r for r in csv.DictReader((rl / "log.csv").open()) if r.get("reward")]
    if not rows:
        raise SystemExit(f"gpu_check: Expect a logged GRPO step in {rl}/log.csv, actually: none")
    return {"wall_s": end - start, "reward": float(rows[-1]["reward"])}


def main(work: Path, device: str, out: Path) -> int:
    served, grpo = served_row(work / "served"), grpo_row(work / "rl")
    text = "\n".join([
        f"# Accelerator check without vLLM (`benchmarks/gpu_check.sh`, DEVICE={device})", "",
        "The default shopper (SmolLM2-135M-Instruct + LoRA) behind `shop-r1 serve-policy` (transformers), driven by "
        "`simulate --policy openai` with the page-exact schema at concurrency 8 on the embedded store (http "
        "backend); then one Shop-R1 GRPO step of the SmolLM2 base with LoRA r 16 (G = 2, 2 completions).", "",
        "| served steps | schema-valid | page-valid | wall s | steps/s | not answered |", "|---|---|---|---|---|---|",
        f"| {served['steps']} | {served['schema_valid']:.0%} | {served['page_valid']:.0%} | {served['wall_s']:.1f} "
        f"| {served['steps_per_s']:.2f} | {served['server_errors']} |", "",
        "Schema-valid and page-valid are shares of the steps the server answered; \"not answered\" counts requests "
        "that timed out or failed before any output (a busy machine), which say nothing about the schema.", "",
        "| GRPO step (incl. start-up) s | reward of the step |", "|---|---|",
        f"| {grpo['wall_s']:.1f} | {grpo['reward']:.3f} |", "",
    ])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(text)
    if served["schema_valid"] < 1.0:
        print("gpu_check: the page-exact schema did not give 100% schema-valid steps", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])))
