"""Arguments shared by ``vawgan-convert`` and ``vawgan convert``: model, speakers, postfilter."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional

from ..errors import VawganError
from ..postfilter import DEFAULT_PF_FIRST, POSTFILTERS


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--target``, ``--source``, ``--postfilter``, ``--pf-alpha``,
    ``--pf-first``."""
    parser.add_argument("--model", type=Path, default=None,
                        help="model bundle (.pt from 'vawgan train'); default: the packaged "
                             "vawgan/pretrained/vcc2016_vawgan.pt")
    parser.add_argument("--target", default=None,
                        help="target speaker (default: the bundle's default target, e.g. the "
                             "first speaker whose name starts with T); 'vawgan convert' takes "
                             "a comma list: each input analysed once, converted to each")
    parser.add_argument("--source", default=None,
                        help="training speaker whose statistics normalize the input (default: "
                             "statistics estimated from the input itself)")
    parser.add_argument("--postfilter", choices=POSTFILTERS, default="gv",
                        help="postfilter toward the target's natural GV or modulation spectrum "
                             "(default gv: on VCC2016 dev it brings the GV distance to that of "
                             "natural speech for +0.5 dB MCD; 'none' gives the lowest MCD; "
                             "see docs/results.md)")
    parser.add_argument("--pf-alpha", type=float, default=1.0,
                        help="postfilter strength in [0, 1] (default 1: match the target)")
    parser.add_argument("--pf-first", type=int, default=DEFAULT_PF_FIRST,
                        help=f"first cepstral order the postfilter changes (default "
                             f"{DEFAULT_PF_FIRST}: c{DEFAULT_PF_FIRST}..c39; the lowest orders "
                             "keep their natural variance through the model, and filtering "
                             "them cost 0.2 dB MCD on VCC2016 dev; 1 = every order)")


def add_metrics_on_argument(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--metrics-on", choices=("features", "output", "none"),
                        default="features", help=help)


def check_conversion_args(args: argparse.Namespace) -> None:
    """``--pf-alpha`` in [0, 1]; ``--sr`` (when the command has it) in 8000..192000 Hz;
    ``--target`` / ``--source``, when given, not empty."""
    for opt in ("target", "source"):
        v = getattr(args, opt)
        if v is not None and not v.strip():
            raise VawganError(f"--{opt} is empty: give a speaker name of the bundle")
    if not 0.0 <= args.pf_alpha <= 1.0:
        raise VawganError(f"--pf-alpha {args.pf_alpha}: must be in [0, 1]")
    if args.pf_first < 1:
        raise VawganError(f"--pf-first {args.pf_first}: must be >= 1 (1 = every order)")
    if getattr(args, "sr", None) is not None and not 8000 <= args.sr <= 192000:
        raise VawganError(f"--sr {args.sr}: must be between 8000 and 192000 Hz")


def load_converter(model: Path, args: argparse.Namespace, background: bool = False,
                   target: Optional[str] = None, bundle=None):
    """The Converter of bundle ``model`` with ``--target`` / ``--source`` / ``--postfilter``.

    The target speaker (``target``, else ``--target``) and the source's statistics are
    resolved here, once; ``bundle``: already loaded from ``model``. With
    ``background``, onnxruntime is imported and the session built in a thread while the
    caller goes on (``vawgan-convert``: during the WORLD analysis of the input).
    """
    from ..bundle import load_bundle
    from ..convert import Converter

    if bundle is None:  # checked here; ~10 ms without onnxruntime
        bundle = load_bundle(model, background=background)
    if args.pf_first > bundle.n_dims:
        raise VawganError(f"--pf-first {args.pf_first}: the model converts c1..c{bundle.n_dims}")
    return Converter(bundle, target or args.target, args.source, args.postfilter,
                     args.pf_alpha, args.pf_first)
