"""``vawgan evaluate``: objective evaluation of converted speech (:mod:`vawgan.evaluate`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Dict, Tuple

from ..config import load_config
from ..errors import VawganError
from ..io import atomic_write_text, check_writable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser)
    parser.add_argument("--out-json", type=Path, default=None, help="write all results as JSON")
    parser.add_argument("--out-md", type=Path, default=None, help="write the table as Markdown")


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments shared with ``vawgan report``."""
    parser.add_argument("--ref", type=Path, required=True,
                        help="natural target recordings: folder or list file")
    parser.add_argument("--system", action="append", default=[], metavar="NAME=DIR",
                        help="converted wavs of one system (folder or list file); repeat")
    parser.add_argument("--config", type=Path, default=None,
                        help="YAML config whose feature section sets the analysis "
                             "(default: the package defaults, as in training)")
    parser.add_argument("--mcd-dims", type=int, default=24, help="MCD on c1..cN (default 24)")
    parser.add_argument("--ms-fft", type=int, default=None,
                        help="modulation-spectrum FFT length in frames (default: stats.ms_fft)")
    parser.add_argument("--jobs", type=int, default=1, help="parallel threads (default 1)")


def parse_system(spec: str) -> Tuple[str, str]:
    """``"NAME=PATH"`` -> (name, path)."""
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise VawganError(f"--system {spec!r}: expected NAME=DIR_OR_LIST")
    return name, path


def load_inputs(args: argparse.Namespace
                ) -> Tuple[Dict[str, Path], Dict[str, Dict[str, Path]], Any]:
    """Parse ``--ref`` / ``--system`` / ``--config`` into (ref, systems, Config)."""
    from ..evaluate import utterance_map

    if not args.system:
        raise VawganError("give at least one --system NAME=DIR_OR_LIST")
    if args.jobs == 0 or args.jobs < -1:
        raise VawganError(f"--jobs {args.jobs}: use a positive number or -1 (all cores)")
    if not 1 <= args.mcd_dims <= 39:
        raise VawganError(f"--mcd-dims {args.mcd_dims}: must be 1..39")
    if args.ms_fft is not None and args.ms_fft < 2:
        raise VawganError(f"--ms-fft {args.ms_fft}: must be an FFT length >= 2 frames")
    cfg = load_config(args.config)
    ref = utterance_map(args.ref, "--ref")
    systems: Dict[str, Dict[str, Path]] = {}
    for spec in args.system:
        name, path = parse_system(spec)
        if name in systems:
            raise VawganError(f"--system {name}: given twice")
        systems[name] = utterance_map(path, f"--system {name}")
    return ref, systems, cfg


def run(args: argparse.Namespace) -> int:
    """0 when every file was evaluated, 1 when some could not be read (left out of the
    table, listed)."""
    from ..evaluate import evaluate, markdown_table

    for out in (args.out_json, args.out_md):
        if out is not None:
            check_writable(out)  # before the work
    ref, systems, cfg = load_inputs(args)
    ms_fft = cfg.stats.ms_fft if args.ms_fft is None else args.ms_fft
    result, _ = evaluate(ref, systems, cfg.feature, args.jobs, args.mcd_dims, ms_fft)
    result["ref"] = str(args.ref)
    table = markdown_table(result)
    if args.out_json:
        atomic_write_text(args.out_json, json.dumps(result, indent=1, default=str))
    if args.out_md:
        atomic_write_text(args.out_md, table)
    print(table)
    for name, s in result["systems"].items():
        if s["without_reference"]:
            print(f"note: {name}: {len(s['without_reference'])} file(s) without a reference: "
                  f"{', '.join(s['without_reference'][:5])}")
    if result["failures"]:
        print(f"unreadable files ({len(result['failures'])}), left out:")
        for f in result["failures"]:
            print(f"  {f}")
        return 1
    return 0
