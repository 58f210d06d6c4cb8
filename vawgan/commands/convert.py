"""``vawgan convert``: many files with one model bundle (:mod:`vawgan.convert_batch`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from ..convert import resolve_model
from ..convert_batch import BACKENDS, convert_batches, plan_batch
from ..corpus import collect_audio
from ..errors import VawganError
from ..parallel import check_jobs
from ..io import check_writable
from ._conversion import (add_metrics_on_argument, add_model_arguments, check_conversion_args,
                          load_converter)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--in", dest="inputs", type=Path, required=True,
                        help="folder of audio files, or a list file with one path per line; "
                             "feature files of a dump (.npz from 'vawgan extract') are read "
                             "instead of analysed")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder: <out>/<input name>.wav; with several --target, "
                             "{target} in it is replaced by each (e.g. exp/SF1-{target}), "
                             "else <out>/<target>/<input name>.wav")
    parser.add_argument("--jobs", type=int, default=1, help="parallel jobs (default 1)")
    parser.add_argument("--backend", choices=BACKENDS, default="threads",
                        help="joblib backend for --jobs > 1 (threads: WORLD releases the GIL "
                             "and the model is shared; see benchmarks/bench_convert.py)")
    parser.add_argument("--overwrite", action="store_true",
                        help="convert again files whose output exists (default: skip them)")
    add_metrics_on_argument(parser, "what the per-file GV / MS distances are computed on")


def run(args: argparse.Namespace) -> int:
    """0 when every file was converted or skipped, 1 if some failed."""
    check_conversion_args(args)
    check_jobs(args.jobs)
    targets = target_list(args.target)
    outs = output_folders(args.out, targets)
    model = resolve_model(args.model)
    for out in outs:
        check_writable(out, folder=True)  # before loading anything
    files = collect_audio(args.inputs, features=True)
    plans = [plan_batch(files, out, args.overwrite, where=str(args.inputs)) for out in outs]
    converters = [load_converter(model, args, target=targets[0])]
    converters += [load_converter(model, args, target=t, bundle=converters[0].bundle)
                   for t in targets[1:]]
    results = convert_batches(converters, [p[0] for p in plans], outs, [p[1] for p in plans],
                              args.jobs, args.backend, args.metrics_on, model=model)
    failed = []
    for res in results:
        print(f"vawgan convert: {res.summary()}")
        failed += res.failed
    if failed:
        print(f"failed files ({len(failed)}):", file=sys.stderr)
        for r in failed:
            print(f"  {r['error']}", file=sys.stderr)
        return 1
    return 0


def target_list(spec: Optional[str]) -> List[Optional[str]]:
    """``--target``: None (the bundle's default), one name, or a comma list."""
    if spec is None:
        return [None]
    names = [t.strip() for t in spec.split(",")]
    if not all(names):
        raise VawganError(f"--target {spec!r}: an empty name in the list")
    if len(set(names)) != len(names):
        raise VawganError(f"--target {spec!r}: a speaker named twice")
    return names


def output_folders(out: Path, targets: Sequence[Optional[str]]) -> List[Path]:
    """One output folder per target: ``out`` for one target; with several, ``{target}``
    in ``out`` replaced by each name, else ``out/<target>``."""
    if "{target}" in str(out):
        if targets == [None]:
            raise VawganError(f"--out {out}: {{target}} needs --target")
        return [Path(str(out).replace("{target}", t)) for t in targets]
    if len(targets) == 1:
        return [out]
    return [out / t for t in targets]
