"""``vawgan f0-range``: propose a speaker's f0 search range (:mod:`vawgan.f0`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import load_config
from ..corpus import list_corpus
from ..errors import VawganError
from ..f0 import (WIDE_CEIL, WIDE_FLOOR, collect_f0, plot_f0_histogram, propose_from_f0,
                  save_f0_range)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", required=True, help="corpus root: <root>/<speaker>/<utt>.<ext>")
    parser.add_argument("--speaker", required=True, help="speaker directory name")
    parser.add_argument("--max-utts", type=int, default=30, help="first N utterances (default 30)")
    parser.add_argument("--out-yaml", required=True, help="f0 range file to write")
    parser.add_argument("--png", help="histogram figure to write")
    parser.add_argument("--config", help="YAML config (feature section)")
    parser.add_argument("--search", type=float, nargs=2, default=(WIDE_FLOOR, WIDE_CEIL),
                        metavar=("FLOOR", "CEIL"), help="wide f0 search range (default 40 700 Hz)")
    parser.add_argument("--jobs", type=int, default=1, help="parallel workers")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config).feature
    if args.max_utts < 1:
        raise VawganError(f"--max-utts {args.max_utts}: must be >= 1")
    lo, hi = args.search
    if not 0 < lo < hi:
        raise VawganError(f"--search {lo:g} {hi:g}: need 0 < FLOOR < CEIL")
    items, _ = list_corpus(args.corpus, [args.speaker])
    items = items[: args.max_utts]
    if not items:
        raise VawganError(f"{Path(args.corpus) / args.speaker}: no audio files")
    f0, failures = collect_f0([p for _, _, p in items], lo, hi, cfg, jobs=args.jobs,
                              progress=not args.no_progress)
    for msg in failures:
        print(msg, file=sys.stderr)
    if f0.size < 10:
        raise VawganError(f"{Path(args.corpus) / args.speaker}: too few voiced frames "
                          f"({f0.size}) to propose an f0 range")
    prop = propose_from_f0(f0, len(items) - len(failures), (lo, hi))
    save_f0_range(args.out_yaml, args.speaker, prop.floor, prop.ceil, prop.note())
    if args.png:
        plot_f0_histogram(args.png, f0, prop.floor, prop.ceil,
                          title=f"{args.speaker}: voiced f0", search=(lo, hi))
    print(f"{prop.summary(args.speaker)} -> {args.out_yaml}")
    return 0
