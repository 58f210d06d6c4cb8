"""Whole-trainer speed: ``Trainer.fit`` with a recipe configuration on a synthetic dump.

Where ``bench_train.py`` times single steps of the step runner against a plain loop,
this runs the trainer as ``vawgan train`` does (logging, checkpoints, bundles, the
speaker-adversarial classifier and every other option of the configuration), with the
schedule shortened, and prints frames/s per phase from ``history.jsonl`` and the wall
time. On CUDA it runs twice, with and without CUDA graphs (``train.cuda_graph``), so
the graph path is measured against eager CUDA in the same run, and checks that both
wrote finite bundles.

Usage::

    python benchmarks/bench_fit.py [--device cpu|cuda] [--config recipes/vcc/conf/default.yaml]
        [--vae-steps 600] [--critic-steps 60] [--gan-steps 120] [--frames 100000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from vawgan.config import Config, load_config  # noqa: E402
from vawgan.data import load_training_data, make_synthetic_dump  # noqa: E402
from vawgan.train import Trainer, set_threads  # noqa: E402


def _phase_rates(history: Path):
    """Median frames/s of each phase's log lines (the first line of a phase, which
    holds warm-up or graph capture, is left out when the phase has more)."""
    by = {}
    for line in history.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        by.setdefault(r["phase"], []).append(r["frames_per_s"])
    out = {}
    for ph, v in sorted(by.items()):
        v = v[1:] if len(v) > 1 else v
        v = sorted(v)
        out[ph] = v[len(v) // 2]
    return out


def run(cfg: Config, data, outdir: Path, device: str):
    t0 = time.perf_counter()
    t = Trainer(cfg, data, outdir, device=device, progress=False)
    t.fit()
    if device == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    finite = all(bool(torch.isfinite(v).all()) for v in t.model.state_dict().values()
                 if v.is_floating_point())
    graphed = None
    if t.graphed is not None:
        graphed = "failed, eager" if t.graphed.failed else "graphs " + ",".join(
            str(p) for p in sorted(t.graphed.graphs))
    return wall, _phase_rates(outdir / "history.jsonl"), finite, graphed, t.runner.bf16


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--config", default=str(ROOT / "recipes/vcc/conf/default.yaml"))
    ap.add_argument("--vae-steps", type=int, default=600)
    ap.add_argument("--critic-steps", type=int, default=60)
    ap.add_argument("--gan-steps", type=int, default=120)
    ap.add_argument("--frames", type=int, default=100000, help="synthetic training frames")
    ap.add_argument("--precision", default=None, help="override train.precision")
    args = ap.parse_args(argv)
    base = load_config(args.config).to_dict()
    base["train"].update(vae_steps=args.vae_steps, critic_steps=args.critic_steps,
                         gan_steps=args.gan_steps, log_every=20,
                         ckpt_every=10 ** 9)
    if args.precision:
        base["train"]["precision"] = args.precision
    nth = set_threads(base["train"].get("threads", 0))
    n_utts = max(2, args.frames // (3 * 300))
    variants = [("eager", False)]
    if args.device == "cuda":
        variants = [("cuda graph", True), ("eager", False)]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        utts, stats = make_synthetic_dump(tmp / "dump", n_utts=n_utts, n_frames=300)
        print(f"config {args.config}; device {args.device}, torch {torch.__version__}, "
              f"threads {nth}; steps {args.vae_steps}/{args.critic_steps}/{args.gan_steps}; "
              f"{len(utts)} synthetic utterances x 300 frames")
        ok = True
        for name, graph in variants:
            d = dict(base)
            d["train"] = dict(base["train"], cuda_graph=graph)
            cfg = Config.from_dict(d)
            data = load_training_data(tmp / "dump", stats, utts, progress=False,
                                      device=args.device)
            wall, rates, finite, graphed, bf16 = run(cfg, data, tmp / name.replace(" ", "_"),
                                                     args.device)
            ok &= finite
            rs = "  ".join(f"phase {p} {v:,.0f} fr/s" for p, v in rates.items())
            print(f"{name:<11} {wall:7.1f} s  {rs}  precision {'bf16' if bf16 else 'fp32'}"
                  f"{'  ' + graphed if graphed else ''}  weights {'finite' if finite else 'NOT FINITE'}")
        if args.device == "cuda":
            print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
