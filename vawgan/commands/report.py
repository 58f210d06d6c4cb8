"""``vawgan report``: over-smoothing figures and a page (:mod:`vawgan.report`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import List, Optional

from ..errors import VawganError
from ..io import check_writable
from ..listen import LISTEN_DEFAULT
from .evaluate import add_input_arguments, load_inputs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser)
    parser.add_argument("--outdir", type=Path, required=True, help="folder for PNGs and pages")
    parser.add_argument("--eval-json", type=Path, default=None,
                        help="reuse the table of a 'vawgan evaluate --out-json' file")
    parser.add_argument("--ms-dims", default="1,10,30", help="dims of the MS plot (default 1,10,30)")
    parser.add_argument("--scatter-dims", default="1,2", help="two dims to scatter (default 1,2)")
    parser.add_argument("--traj-dim", type=int, default=1, help="dim of the trajectory plot")
    parser.add_argument("--utt", default=None, help="utterance of the trajectory plot")
    parser.add_argument("--source", type=Path, default=None,
                        help="source recordings (folder or list file, matched by utterance "
                             "name): a column of the audio players")
    parser.add_argument("--listen", type=int, default=LISTEN_DEFAULT,
                        help=f"utterances with audio players on the page, copied as 16-bit "
                             f"WAV into <outdir>/audio/ (default {LISTEN_DEFAULT}; 0 = none)")


def parse_dims(spec: str, n: Optional[int], what: str, max_dim: int = 39) -> List[int]:
    """Comma-separated 1-based mel-cepstral dims (``n`` of them when given) of option ``what``."""
    try:
        dims = [int(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        raise VawganError(f"{what} {spec!r}: expected comma-separated integers") from None
    if n is not None and len(dims) != n:
        raise VawganError(f"{what} {spec!r}: expected {n} dims")
    if not dims or any(not 1 <= d <= max_dim for d in dims):
        raise VawganError(f"{what} {spec!r}: dims must be in 1..{max_dim} (c1..c{max_dim})")
    return dims


def run(args: argparse.Namespace) -> int:
    from ..evaluate import analyze_files, evaluate, markdown_table
    from ..report import load_eval_json, make_report

    ms_dims = parse_dims(args.ms_dims, None, "--ms-dims")
    scatter_dims = parse_dims(args.scatter_dims, 2, "--scatter-dims")
    parse_dims(str(args.traj_dim), 1, "--traj-dim")
    if args.listen < 0:
        raise VawganError(f"--listen {args.listen}: must be >= 0")
    check_writable(args.outdir, folder=True)  # before the analysis
    ref, systems, cfg = load_inputs(args)
    from ..evaluate import utterance_map

    sources = None if args.source is None else utterance_map(args.source, "--source")
    if args.utt is not None and args.utt not in ref:
        raise VawganError(f"--utt {args.utt}: not a readable reference utterance "
                          f"(no such name in {args.ref})")
    ms_fft = cfg.stats.ms_fft if args.ms_fft is None else args.ms_fft
    result = None if args.eval_json is None else load_eval_json(args.eval_json, systems)
    paths = list(ref.values()) + [p for s in systems.values() for p in s.values()]
    feats = analyze_files(paths, cfg.feature, args.jobs)
    if result is None:
        result, feats = evaluate(ref, systems, cfg.feature, args.jobs, args.mcd_dims, ms_fft,
                                 features=feats)
        result["ref"] = str(args.ref)
    out = make_report(args.outdir, result, feats, ref, systems, cfg.feature.silence_db, ms_fft,
                      cfg.feature.frame_period, ms_dims, scatter_dims, args.traj_dim, args.utt,
                      sources=sources, listen=args.listen)
    print(markdown_table(result))
    print(f"vawgan report: {len(out)} files -> {args.outdir} (open {out['index.html']} "
          "in a browser)")
    return 0
