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
from ..uttmetrics import metric_dims
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


#: the dims MCD (and the second GV figure) cover
MCD_DIMS = 24


def format_metrics(m: dict) -> str:
    """One line of :func:`vawgan.uttmetrics.utterance_metrics` figures."""
    parts = []
    if "gv_ratio" in m:
        parts.append(f"GV ratio {m['gv_ratio']:.3f} / {m['gv_ratio_mcd']:.3f}, "
                     f"GVD {m['gv_distance']:.3f} / {m['gv_distance_mcd']:.3f}")
    if "ms_distance" in m:
        parts.append(f"MSD {m['ms_distance']:.2f} dB")
    if "mcd" in m:
        parts.append(f"MCD {m['mcd']:.2f} dB, F0 RMSE {m['f0_rmse']:.1f} Hz, "
                     f"log-F0 corr {m['logf0_corr']:.3f}, V/UV {100 * m['vuv_error']:.1f} %")
    return ", ".join(parts)


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
    info["n_dims"] = converter.bundle.n_dims
    info["dims"] = metric_dims(info["n_dims"], MCD_DIMS)
    info["seconds"] = round(time.perf_counter() - t0, 3)
    if args.json:
        print(json.dumps(info, indent=1))
    else:
        src = info["source"] if args.source else "statistics of the input"
        print(f"{args.input} -> {args.output} ({info['kind']}, {src} -> {info['target']}, "
              f"postfilter {args.postfilter}, {info['fs']} Hz, {info['duration_s']:.2f} s)")
        if info["metrics"]:
            dims = info["dims"]
            print(f"metrics against {info['target']}'s natural statistics (GV ratio 1 = "
                  f"natural; GV ratio and GVD over {dims['gv_ratio']} / "
                  f"{dims['gv_ratio_mcd']}, MSD over {dims['ms_distance']}):")
            rows = [("before postfilter (features)", info["metrics_before_postfilter"]),
                    (f"after postfilter {args.postfilter} ({args.metrics_on})"
                     if args.postfilter != "none" else f"converted {args.metrics_on}",
                     info["metrics"])]
            for label, m in rows:
                if m:
                    print(f"  {label}: {format_metrics(m)}")
            if args.postfilter == "gv" and args.metrics_on == "features" and args.pf_alpha == 1:
                dims = f"c{args.pf_first}..c{info['n_dims']}"
                if converter.bundle.stats[info["target"]].gv_resynth_ratio is None:
                    print(f"  (the GV postfilter sets the GV of {dims} to these very "
                          "statistics: their GVD is 0 after it by construction; "
                          "--metrics-on output measures the audio)")
                else:
                    print(f"  (the GV postfilter aims the GV of {dims} at what WORLD "
                          "synthesis turns into these statistics (the bundle's "
                          "gv_resynth_ratio): their GVD here is small, not 0; "
                          "--metrics-on output measures the audio)")
    return 0
