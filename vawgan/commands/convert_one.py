"""``vawgan-convert in.wav out.wav``: convert one file (:class:`vawgan.convert.Converter`).

Imports neither torch nor pysptk, librosa (unless the input must be resampled),
matplotlib, joblib or tqdm (see :mod:`vawgan.convert`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..audio import check_output_path, probe_audio
from ..convert import resolve_model
from ..errors import AudioError
from ._conversion import (add_metrics_on_argument, add_model_arguments, check_conversion_args,
                          load_converter)

DESCRIPTION = ("convert one utterance to a target speaker's voice with a VAW-GAN "
               "bundle and report its over-smoothing (GV / MS distance)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="audio file to convert (any rate, mono or not)")
    parser.add_argument("output", type=Path,
                        help="converted audio (.wav or .flac), written atomically; an existing "
                             "file is replaced, keeping its mode (vawgan convert skips instead)")
    add_model_arguments(parser)
    parser.add_argument("--sr", type=int, default=None,
                        help="output sample rate (default: the input's own rate)")
    parser.add_argument("--reference", type=Path, default=None,
                        help="natural target recording of the same sentence: adds MCD, F0 RMSE, "
                             "log-F0 correlation and V/UV error")
    add_metrics_on_argument(parser, "compute the metrics on the converted features before "
                                    "synthesis (default, free) or on a re-analysis of the written "
                                    "output (the code path of 'vawgan evaluate'), or skip them")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def run(args: argparse.Namespace) -> int:
    """Returns 0; errors are VawganError (one line)."""
    t0 = time.perf_counter()
    check_conversion_args(args)
    model = resolve_model(args.model)
    check_output_path(args.input, args.output)  # before loading the bundle: fail fast
    if args.reference is not None:  # before any work: its header (the samples are read later)
        if not args.reference.exists():
            raise AudioError(args.reference, "no such reference file")
        probe_audio(args.reference)
    converter = load_converter(model, args, background=True)  # ORT loads meanwhile
    info = converter.convert_file(args.input, args.output, args.sr, args.reference,
                                  args.metrics_on, check_output=False)
    info["model"] = str(model)
    info["seconds"] = round(time.perf_counter() - t0, 3)
    if args.json:
        print(json.dumps(info, indent=1))
    else:
        src = info["source"] if args.source else "statistics of the input"
        print(f"{args.input} -> {args.output} ({info['kind']}, {src} -> {info['target']}, "
              f"postfilter {args.postfilter}, {info['fs']} Hz, {info['duration_s']:.2f} s)")
        if info["metrics"]:
            figures = ", ".join(f"{k} {v:.4g}" for k, v in info["metrics"].items())
            print(f"metrics on the converted {args.metrics_on}: {figures}")
    return 0
