"""GPU comparison for issue 10: every template's `bench` against the plain-Keras reference.

One call on the GPU machine (JAX backend, no TensorFlow, no network):

    python3 scripts/gpu_bench.py --reference .ref/plain_keras_reference.py --out "$OUT"

For each template it generates a project with the GPU-sized config of the
reference model of its domain (ResNet-50 at 224, a BERT-base-sized encoder at
sequence 128, a 2D U-Net at 256x256, PilotNet, the fraud MLP), runs the
project's own `bench` (its real input pipeline, fp32 vs mixed, XLA), runs the
reference in the same call, and prints one table. `--small` makes it a CPU
smoke run of the same path. Results: OUT/bench_<template>.json, OUT/baseline.jsonl.
A device call is limited to 10 minutes: split with --templates (e.g. fraud,driving,nlp
then vision,medical) when all five do not fit. The GPU machine needs the wheels of
shared/gpu/fetch-wheels.sh installed first (it has no Keras, nibabel or pydicom).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# template -> (reference model name, --set overrides for the GPU-sized config, target)
PLAN: dict[str, tuple[str, list[str], str]] = {
    "fraud": ("fraud_mlp", ["train.batch_size=4096"], ">= 3 M rows/s"),
    "driving": ("pilotnet", ["train.batch_size=256"], ">= 60 k img/s"),
    "vision": ("resnet50", ['model.backbone="resnet50"', "data.image_size=224",
                            "train.batch_size=256"], ">= 5,000 img/s"),
    "medical": ("unet256", ["data.spacing=[1.125, 1.125, 6.0]", "data.max_size=256",
                            "model.width=32", "model.depth=5", "train.batch_size=32"],
                ">= 2,300 img/s"),
    "nlp": ("bert_base", ["data.sequence_length=128", "model.embedding_dim=768",
                          "model.num_layers=12", "model.num_heads=12",
                          "model.intermediate_dim=3072", "train.batch_size=64"], ">= 45% MFU"),
}
SMALL = {"vision": ["data.image_size=64", "train.batch_size=16"],
         "nlp": ["model.embedding_dim=128", "model.num_layers=2", "model.num_heads=2",
                 "model.intermediate_dim=256", "train.batch_size=16"],
         "medical": ["data.max_size=64", "model.width=8", "model.depth=4",
                     "train.batch_size=8"],
         "driving": ["train.batch_size=32"], "fraud": ["train.batch_size=512"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu-out")))
    parser.add_argument("--templates", default=",".join(PLAN))
    parser.add_argument("--small", action="store_true", help="CPU smoke run of the same path")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--reference-budget", type=int, default=240,
                        help="seconds the reference may use (its BUDGET_S)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONUNBUFFERED": "1"}
    work = Path(tempfile.mkdtemp(prefix="gpu-bench-"))
    started = time.time()
    results = {}
    for template in args.templates.split(","):
        reference, overrides, _ = PLAN[template]
        if args.small:
            overrides = [o for o in overrides if o.split("=")[0] not in
                         {s.split("=")[0] for s in SMALL[template]}] + SMALL[template]
        project = work / f"gb_{template}"
        subprocess.run([sys.executable, "-m", "appgen", "new", project.name, "-t", template,
                        "-o", str(project), "--backend", "jax"], check=True, env=env)
        sets = [arg for item in overrides + [f"bench.steps={args.steps}",
                                             "bench.warmup_steps=5"]
                for arg in ("--set", item)]
        target = args.out / f"bench_{template}.json"
        run = subprocess.run([sys.executable, "-m", project.name, "bench", "--out", str(target),
                              *sets], cwd=project, env=env, capture_output=True, text=True)
        print(run.stdout[-1500:], run.stderr[-1500:] if run.returncode else "", flush=True)
        results[template] = json.loads(target.read_text()) if target.is_file() else None
    reference_env = {**env, "OUT": str(args.out), "SMALL": "1" if args.small else "0",
                     "BUDGET_S": str(args.reference_budget),
                     "ONLY": ",".join(PLAN[t][0] for t in args.templates.split(","))}
    subprocess.run([sys.executable, str(args.reference)], env=reference_env, check=False)
    print(f"\ntotal {time.time() - started:.0f} s\n")
    print(table(results, read_reference(args.out / "baseline.jsonl")))
    return 0


def read_reference(path: Path) -> dict[tuple[str, str], float]:
    best: dict[tuple[str, str], float] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if "samples_per_s" in record:
                key = (record["model"], record["policy"])
                best[key] = max(best.get(key, 0.0), record["samples_per_s"])
    return best


def table(results: dict[str, dict | None], reference: dict[tuple[str, str], float]) -> str:
    rows = ["| template | reference fp32 | reference mixed | ours fp32 | ours mixed | "
            "mixed/fp32 | ours MFU | pipeline alone | target |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for template, result in results.items():
        name, _, target = PLAN[template]
        ref32 = reference.get((name, "float32"))
        refmix = reference.get((name, "mixed_bfloat16"))
        if result is None:
            rows.append(f"| {template} | {ref32} | {refmix} | failed | | | | | {target} |")
            continue
        ours = {v["precision"]: v for v in result["variants"] if v["jit_compile"]}
        o32 = ours.get("float32", {}).get("samples_per_s")
        mixed = next((v for p, v in ours.items() if p != "float32"), {})
        speedup = f"{mixed['samples_per_s'] / o32:.2f}x" if mixed and o32 else ""
        mfu = f"{mixed['mfu']:.1%}" if mixed.get("mfu") else ""
        rows.append(f"| {template} | {ref32 or ''} | {refmix or ''} | {o32 or ''} | "
                    f"{mixed.get('samples_per_s', '')} | {speedup} | {mfu} | "
                    f"{result['pipeline_samples_per_s']:,.0f} | {target} |")
    return "\n".join(rows)


if __name__ == "__main__":
    raise SystemExit(main())
