"""``vawgan convert``: many files with one model bundle (:mod:`vawgan.convert_batch`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..convert import resolve_model
from ..convert_batch import BACKENDS, convert_batch, plan_batch
from ..corpus import collect_audio
from ..errors import VawganError
from ..io import check_writable
from ._conversion import (add_metrics_on_argument, add_model_arguments, check_conversion_args,
                          load_converter)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--in", dest="inputs", type=Path, required=True,
                        help="folder of audio files, or a list file with one path per line")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder: <out>/<input name>.wav")
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
    if args.jobs == 0 or args.jobs < -1:
        raise VawganError(f"--jobs {args.jobs}: use a positive number or -1 (all cores)")
    model = resolve_model(args.model)
    check_writable(args.out, folder=True)  # before loading anything
    files = collect_audio(args.inputs)
    todo, skipped = plan_batch(files, args.out, args.overwrite, where=str(args.inputs))
    converter = load_converter(model, args)
    res = convert_batch(converter, todo, args.out, skipped, args.jobs, args.backend,
                        args.metrics_on, model=model)
    print(f"vawgan convert: {res.summary()}")
    if res.failed:
        print(f"failed files ({len(res.failed)}):", file=sys.stderr)
        for r in res.failed:
            print(f"  {r['error']}", file=sys.stderr)
        return 1
    return 0
