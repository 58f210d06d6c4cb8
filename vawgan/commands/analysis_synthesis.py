"""``vawgan analysis-synthesis``: resynthesize a file through the features (:mod:`vawgan.anasyn`)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from ..config import load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="input audio file (any format soundfile reads)")
    parser.add_argument("output", type=Path, help="output .wav or .flac (written atomically)")
    parser.add_argument("--config", type=Path, default=None,
                        help="YAML config; its 'feature' section sets the analysis")
    parser.add_argument("--f0-floor", type=float, default=None, help="f0 search floor (Hz)")
    parser.add_argument("--f0-ceil", type=float, default=None, help="f0 search ceiling (Hz)")
    parser.add_argument("--sr", type=int, default=None,
                        help="output sample rate (default: the input's; the analysis runs at "
                             "the config's feature.fs)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def run(args: argparse.Namespace) -> int:
    from ..anasyn import analysis_synthesis, format_report

    cfg = load_config(args.config)
    feat_cfg = cfg.feature.for_speaker(args.f0_floor, args.f0_ceil)
    res = analysis_synthesis(args.input, args.output, feat_cfg, sr=args.sr,
                             ms_fft=cfg.stats.ms_fft)
    if args.json:
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v)
                 for k, v in res.items()}
        print(json.dumps(clean, indent=2))
    else:
        print(format_report(res))
    sys.stdout.flush()
    return 0
