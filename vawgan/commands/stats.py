"""``vawgan stats``: per-speaker statistics of a dump -> ``stats.json`` (:mod:`vawgan.stats`)."""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict

from ..config import load_config
from ..corpus import parse_utt_spec, read_utt_list
from ..errors import VawganError
from ..io import check_writable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dump", required=True, help="feature dump (vawgan extract --out)")
    parser.add_argument("--out", required=True, help="statistics file to write (stats.json)")
    parser.add_argument("--utts-file", help="only these utterances (one speaker/utt per line)")
    parser.add_argument("--exclude-utts", nargs="+", metavar="ID",
                        help="utterance ids or ranges to leave out, e.g. 100151-100162")
    parser.add_argument("--speakers", nargs="+", metavar="SPK", help="only these speakers")
    parser.add_argument("--config", help="YAML config (feature and stats sections)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="threads resynthesizing the utterances stats.resynth_utts names "
                             "(-1 = all cores)")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from ..stats import dump_stats, save_stats

    cfg = load_config(args.config)
    check_writable(args.out)  # before reading the dump
    utts = read_utt_list(args.utts_file) if args.utts_file else None
    try:
        exclude = parse_utt_spec(args.exclude_utts or [])
    except ValueError as e:
        raise VawganError(f"--exclude-utts: {e}") from None
    stats = dump_stats(args.dump, cfg, args.speakers, utts, exclude, not args.no_progress,
                       jobs=args.jobs)
    save_stats(args.out, stats, asdict(cfg.feature), cfg.stats.ms_fft)
    for spk, s in sorted(stats.items()):
        print(f"{spk}: {s.n_utts} utts, {s.n_frames} frames, "
              f"f0 {math.exp(s.lf0_mean):.0f} Hz (lf0 std {s.lf0_std:.3f})")
    print(f"wrote {args.out} ({len(stats)} speakers)")
    return 0
