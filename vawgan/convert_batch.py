"""``vawgan convert``: many files with one model bundle, in parallel (joblib).

Each file goes through :func:`vawgan.convert.convert_file` (the pipeline of
``vawgan-convert``); a file that fails is reported and the batch goes on; outputs that
exist are skipped unless ``--overwrite`` (so a killed batch resumes). ``--backend
threads`` (default) shares one loaded bundle between threads (WORLD and the numpy
matrix products release the GIL); ``processes`` loads it once per worker.

Examples
--------
Shell::

    vawgan convert --model exp/vawgan.pt --source SF1 --target TM1 --in data/dev/SF1.list \\
        --out exp/convert/SF1-TM1 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict

import numpy as np

from .convert import (_add_model_arguments, _check_common_args, _check_speaker, _load_bundle,
                      convert_file, default_target, resolve_model)
from .corpus import collect_audio
from .errors import VawganError

_WORKER_BUNDLES: Dict[str, Any] = {}


def _worker_bundle(model: str):
    """The bundle in a worker process, loaded once per process."""
    if model not in _WORKER_BUNDLES:
        _WORKER_BUNDLES[model] = _load_bundle(Path(model))
    return _WORKER_BUNDLES[model]


def _convert_task(bundle_or_path, in_path: Path, out_path: Path, opts: Dict[str, Any]):
    bundle = _worker_bundle(bundle_or_path) if isinstance(bundle_or_path, str) else bundle_or_path
    try:
        info = convert_file(bundle, in_path, out_path, **opts)
        return {"input": str(in_path), "output": str(out_path), "ok": True,
                "metrics": info["metrics"]}
    except VawganError as e:
        return {"input": str(in_path), "ok": False, "error": str(e)}
    except Exception as e:  # keep the batch going; the report shows the type
        return {"input": str(in_path), "ok": False,
                "error": f"{in_path}: internal error {type(e).__name__}: {e}"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _add_model_arguments(parser)
    parser.add_argument("--in", dest="inputs", type=Path, required=True,
                        help="folder of audio files, or a list file with one path per line")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder: <out>/<input name>.wav")
    parser.add_argument("--jobs", type=int, default=1, help="parallel jobs (default 1)")
    parser.add_argument("--backend", choices=("threads", "processes"), default="threads",
                        help="joblib backend for --jobs > 1 (threads: WORLD releases the GIL "
                             "and the model is shared; see benchmarks/bench_convert.py)")
    parser.add_argument("--overwrite", action="store_true",
                        help="convert again files whose output exists (default: skip them)")
    parser.add_argument("--metrics-on", choices=("features", "output", "none"), default="features",
                        help="what the per-file GV / MS distances are computed on")


def run(args) -> int:
    """``vawgan convert``: 0 when every file was converted or skipped, 1 if some failed."""
    from contextlib import nullcontext

    from joblib import Parallel, delayed
    from threadpoolctl import threadpool_limits
    from tqdm import tqdm

    _check_common_args(args)
    if args.jobs == 0 or args.jobs < -1:
        raise VawganError(f"--jobs {args.jobs}: use a positive number or -1 (all cores)")
    model = resolve_model(args.model)
    files = collect_audio(args.inputs)
    seen: Dict[str, Path] = {}
    for f in files:
        if f.stem in seen:
            raise VawganError(f"{args.inputs}: two inputs named {f.stem} ({seen[f.stem]}, {f}); "
                              "outputs would collide")
        seen[f.stem] = f
    bundle = _load_bundle(model)
    target = _check_speaker(bundle, args.target or default_target(bundle))
    if args.source:
        _check_speaker(bundle, args.source)
    todo, skipped = [], []
    for f in files:
        out = args.out / f"{f.stem}.wav"
        if out.exists() and not args.overwrite:
            skipped.append(str(out))
        else:
            todo.append((f, out))
    opts = dict(target=target, source=args.source, postfilter=args.postfilter,
                pf_alpha=args.pf_alpha, metrics_on=args.metrics_on)
    processes = args.backend == "processes" and args.jobs != 1
    handle = str(model) if processes else bundle
    t0 = time.perf_counter()
    results = []
    if todo:
        # parallel workers: one BLAS thread each (loky limits its processes itself;
        # threads would otherwise each fan out over every core)
        limit = threadpool_limits(1, user_api="blas") if args.jobs != 1 else nullcontext()
        with limit:
            par = Parallel(n_jobs=args.jobs, backend="loky" if processes else "threading",
                           return_as="generator_unordered")
            gen = par(delayed(_convert_task)(handle, f, out, opts) for f, out in todo)
            for r in tqdm(gen, total=len(todo), desc=f"convert -> {target}", unit="file",
                          disable=None):
                results.append(r)
    wall = time.perf_counter() - t0
    ok = sorted((r for r in results if r["ok"]), key=lambda r: r["input"])
    failed = sorted((r for r in results if not r["ok"]), key=lambda r: r["input"])
    summary = {"model": str(model), "kind": bundle.kind, "target": target,
               "source": args.source or "input", "postfilter": args.postfilter,
               "converted": ok, "skipped": skipped,
               "failed": [{"input": r["input"], "error": r["error"]} for r in failed],
               "seconds": round(wall, 3)}
    from .io import atomic_write_text

    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "convert.json", json.dumps(summary, indent=1))
    print(f"vawgan convert: {len(ok)} converted, {len(skipped)} skipped (output exists), "
          f"{len(failed)} failed in {wall:.1f} s -> {args.out}")
    gvd = [r["metrics"]["gv_distance"] for r in ok if "gv_distance" in r["metrics"]]
    msd = [r["metrics"]["ms_distance"] for r in ok if "ms_distance" in r["metrics"]]
    if gvd:
        print(f"mean GV distance {np.mean(gvd):.4g}, mean MS distance "
              f"{np.mean(msd) if msd else float('nan'):.4g} (to {target}'s natural statistics)")
    if failed:
        print(f"failed files ({len(failed)}):", file=sys.stderr)
        for r in failed:
            print(f"  {r['error']}", file=sys.stderr)
        return 1
    return 0
