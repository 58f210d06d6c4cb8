"""``vawgan evaluate``: objective evaluation of converted speech (:mod:`vawgan.evaluate`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Dict, Tuple

from ..config import load_config
from ..errors import VawganError
from ..parallel import check_jobs
from ..io import atomic_write_text, check_writable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser)
    parser.add_argument("--out-json", type=Path, default=None, help="write all results as JSON")
    parser.add_argument("--out-md", type=Path, default=None, help="write the table as Markdown")
    add_speaker_arguments(parser)


def add_speaker_arguments(parser: argparse.ArgumentParser) -> None:
    """Speaker similarity (``vawgan[eval]``): ``--target``, ``--centroids``, ..."""
    g = parser.add_argument_group("speaker similarity (pip install 'vawgan[eval]')")
    g.add_argument("--target", default=None,
                   help="the speaker the systems converted to (needs --centroids)")
    g.add_argument("--centroids", action="append", default=[], metavar="SPK=DIR",
                   help="recordings of one candidate speaker (folder or list file; e.g. "
                        "training utterances), for its centroid; repeat for every speaker "
                        "of the model, the target included")
    g.add_argument("--centroid-utts", type=int, default=20,
                   help="first N files of each --centroids (default 20)")
    g.add_argument("--centroid-cache", type=Path, default=None,
                   help=".npz cache of the centroids (remade for speakers whose files changed)")


def load_speaker(args: argparse.Namespace):
    """``(centroids, target)`` for :func:`vawgan.evaluate.evaluate`, or None."""
    if args.target is None and not args.centroids:
        return None
    if args.target is None or not args.centroids:
        raise VawganError("speaker similarity needs both --target and --centroids SPK=DIR")
    if args.centroid_utts < 1:
        raise VawganError(f"--centroid-utts {args.centroid_utts}: must be >= 1")
    from ..corpus import collect_audio
    from ..speaker import load_encoder, speaker_centroids

    speakers = {}
    for spec in args.centroids:
        name, path = parse_system(spec, "--centroids", "SPK")
        if name in speakers:
            raise VawganError(f"--centroids {name}: given twice")
        speakers[name] = collect_audio(path, f"--centroids {name}")[:args.centroid_utts]
    if args.target not in speakers:
        raise VawganError(f"--target {args.target}: not among the --centroids speakers "
                          f"({', '.join(speakers)})")
    if args.centroid_cache is not None:
        check_writable(args.centroid_cache)
    load_encoder()  # the extra missing: say so before any analysis
    return speaker_centroids(speakers, args.centroid_cache), args.target


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


def parse_system(spec: str, option: str = "--system", key: str = "NAME") -> Tuple[str, str]:
    """``"NAME=PATH"`` -> (name, path); ``option`` and ``key`` name them in the error."""
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise VawganError(f"{option} {spec!r}: expected {key}=DIR_OR_LIST")
    return name, path


def load_inputs(args: argparse.Namespace
                ) -> Tuple[Dict[str, Path], Dict[str, Dict[str, Path]], Any]:
    """Parse ``--ref`` / ``--system`` / ``--config`` into (ref, systems, Config)."""
    from ..evaluate import utterance_map

    if not args.system:
        raise VawganError("give at least one --system NAME=DIR_OR_LIST")
    check_jobs(args.jobs)
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
    speaker = load_speaker(args)
    ms_fft = cfg.stats.ms_fft if args.ms_fft is None else args.ms_fft
    result, _ = evaluate(ref, systems, cfg.feature, args.jobs, args.mcd_dims, ms_fft,
                         speaker=speaker)
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
