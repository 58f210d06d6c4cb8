"""``vawgan analysis-synthesis``: resynthesize through the features (:mod:`vawgan.anasyn`).

One file (``INPUT OUTPUT``: figures printed), or a batch (``--in LIST_OR_FOLDER --out
DIR``: one process for all files, parallel threads, outputs that exist skipped, failures
listed, exit 1 if any). Inputs may be feature files of a dump (``.npz``): then only the
synthesis runs.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from ..config import load_config
from ..errors import VawganError
from ..parallel import check_jobs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, nargs="?",
                        help="input audio file (any format soundfile reads), or a feature "
                             "file of a dump (.npz)")
    parser.add_argument("output", type=Path, nargs="?",
                        help="output .wav or .flac (written atomically)")
    parser.add_argument("--in", dest="inputs", type=Path, default=None,
                        help="batch: a folder of audio (or .npz feature) files, or a list file")
    parser.add_argument("--out", type=Path, default=None,
                        help="batch: output folder, <out>/<input name>.wav")
    parser.add_argument("--jobs", type=int, default=1, help="batch: parallel threads")
    parser.add_argument("--overwrite", action="store_true",
                        help="batch: redo files whose output exists (default: skip them)")
    parser.add_argument("--no-metrics", action="store_true",
                        help="write the resynthesis only (no re-analysis and comparison)")
    parser.add_argument("--config", type=Path, default=None,
                        help="YAML config; its 'feature' section sets the analysis")
    parser.add_argument("--f0-floor", type=float, default=None, help="f0 search floor (Hz)")
    parser.add_argument("--f0-ceil", type=float, default=None, help="f0 search ceiling (Hz)")
    parser.add_argument("--sr", type=int, default=None,
                        help="output sample rate (default: the input's; the analysis runs at "
                             "the config's feature.fs)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def _clean(d):
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}


def run(args: argparse.Namespace) -> int:
    from ..anasyn import analysis_synthesis, analysis_synthesis_batch, format_report

    batch = args.inputs is not None or args.out is not None
    if batch and (args.input is not None or args.output is not None):
        raise VawganError("give INPUT OUTPUT (one file) or --in/--out (a batch), not both")
    if batch and (args.inputs is None or args.out is None):
        raise VawganError("a batch needs both --in and --out")
    if not batch and (args.input is None or args.output is None):
        raise VawganError("give INPUT OUTPUT, or --in LIST --out DIR for a batch")
    check_jobs(args.jobs)
    cfg = load_config(args.config)
    feat_cfg = cfg.feature.for_speaker(args.f0_floor, args.f0_ceil)
    if not batch:
        res = analysis_synthesis(args.input, args.output, feat_cfg, sr=args.sr,
                                 ms_fft=cfg.stats.ms_fft, metrics=not args.no_metrics)
        if args.json:
            print(json.dumps(_clean(res), indent=2))
        elif args.no_metrics:
            print(f"wrote {res['output']} ({res['duration_s']:.2f} s at {res['fs_out']} Hz)")
        else:
            print(format_report(res))
        sys.stdout.flush()
        return 0
    from ..corpus import collect_audio
    from ..io import check_writable

    check_writable(args.out, folder=True)
    files = collect_audio(args.inputs, features=True)
    s = analysis_synthesis_batch(files, args.out, feat_cfg, sr=args.sr, ms_fft=cfg.stats.ms_fft,
                                 jobs=args.jobs, overwrite=args.overwrite,
                                 metrics=not args.no_metrics)
    if args.json:
        print(json.dumps({**s, "done": [_clean(r) for r in s["done"]]}, indent=1))
    print(f"vawgan analysis-synthesis: {len(s['done'])} written, {len(s['skipped'])} skipped "
          f"(output exists), {len(s['failed'])} failed in {s['seconds']:.1f} s -> {args.out}",
          file=sys.stderr if args.json else sys.stdout)
    if s["failed"]:
        print(f"failed files ({len(s['failed'])}):", file=sys.stderr)
        for r in s["failed"]:
            print(f"  {r['error']}", file=sys.stderr)
        return 1
    return 0
