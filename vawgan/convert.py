"""Voice conversion with a model bundle: the API and ``vawgan-convert`` (one file).

``vawgan convert`` (many files, parallel) is :mod:`vawgan.convert_batch`, on this API.

The pipeline, identical for both commands and for the Python API:

1. :func:`vawgan.features.analyze_file` of the input (the same analysis as training);
2. the mel-cepstrum body c1..c39 goes through :meth:`Bundle.convert_body`: normalized
   with the *source* statistics, encoded (posterior mean), decoded with the *target*
   speaker, de-normalized with the target statistics;
3. optionally a GV or MS postfilter toward the target's natural statistics;
4. c0 (energy) and the coded aperiodicity are kept from the source; f0 goes through the
   log-Gaussian transform (:func:`vawgan.f0.convert_f0`);
5. :func:`vawgan.features.synthesize`, resampled back to the input's rate (or ``--sr``),
   written atomically.

Source statistics come from a training speaker of the bundle (``--source SPK``) or,
by default, are **estimated from the input itself** (mel-cepstrum mean/std over its
non-silent frames, log-f0 mean/std over its voiced frames), so any speaker can be
converted.

The default target is the bundle's ``train_info["default_target"]`` when the trainer
stored one, else the first speaker whose name starts with ``T`` (the VCC naming of
target speakers), else the first speaker of the bundle.

Over-smoothing figures printed at the end (GV and MS distance of c1..c39 to the
target speaker's natural statistics stored in the bundle; with ``--reference``, MCD,
F0 RMSE, log-F0 correlation and V/UV error, a fraction) are computed by
:func:`vawgan.uttmetrics.utterance_metrics`, the function behind every per-utterance
figure, by default on the **converted features before synthesis** (``--metrics-on
features``, free). ``--metrics-on output`` re-analyzes the written file with
``analyze_file``: the code path of ``vawgan evaluate``, which then reports the same
numbers, in the same units, for that file.

Examples
--------
Shell::

    vawgan-convert in.wav out.wav                       # default model and target
    vawgan-convert in.wav out.wav --model exp/vawgan.pt --target TM1 --postfilter gv
    vawgan convert --model exp/vawgan.pt --source SF1 --target TM1 --in data/dev/SF1.list \\
        --out exp/convert/SF1-TM1 --jobs 2

``vawgan-convert`` imports neither torch nor pysptk, librosa (unless the input must be
resampled), matplotlib, joblib or tqdm: the bundle is read and run in numpy
(:mod:`vawgan.bundle`), so the command costs little more than the WORLD analysis and
synthesis themselves (``benchmarks/bench_convert.py``).

Python::

    from vawgan.bundle import load_bundle
    from vawgan.convert import convert_file
    info = convert_file(load_bundle("exp/vawgan.pt"), "in.wav", "out.wav", target="TM1")
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from .audio import check_output_path, resample, write_audio
from .config import FeatureConfig
from .errors import AudioError, BundleError, VawganError
from .features import Features, analyze_file
from .io import PathLike
from .uttmetrics import utterance_metrics

SINGLE_DESCRIPTION = ("convert one utterance to a target speaker's voice with a VAW-GAN "
                      "bundle and report its over-smoothing (GV / MS distance)")
#: where the lead installs the default model (see vawgan/pretrained/README.md)
DEFAULT_MODEL = Path(__file__).resolve().parent / "pretrained" / "vcc2016_vawgan.pt"
POSTFILTERS = ("none", "gv", "ms")


# ----------------------------------------------------------------------------- helpers
@dataclass
class SourceStats:
    """Statistics used to normalize the source: mcep over c1..cM, log-f0 over voiced frames."""

    mcep_mean: np.ndarray  #: (M,)
    mcep_std: np.ndarray  #: (M,)
    lf0_mean: float
    lf0_std: float
    origin: str  #: "input" (estimated from the utterance) or the training speaker's name


def resolve_model(model: Optional[PathLike]) -> Path:
    """The bundle path to use: ``model``, else the packaged default; BundleError if absent."""
    if model is None:
        if not DEFAULT_MODEL.is_file():
            raise BundleError(
                f"{DEFAULT_MODEL}: no default model is installed; pass --model BUNDLE.pt "
                "(a bundle written by 'vawgan train', see vawgan/pretrained/README.md)")
        return DEFAULT_MODEL
    path = Path(model)
    if not path.is_file():
        raise BundleError(f"{path}: no such model bundle")
    return path


def stat(stats, key: str, default=None):
    """A field of speaker statistics, whether a SpeakerStats or a plain dict (old bundles)."""
    if stats is None:
        return default
    if isinstance(stats, dict):
        return stats.get(key, default)
    return getattr(stats, key, default)


def default_target(bundle) -> str:
    """The bundle's default target speaker (see the module docstring for the rule)."""
    info = getattr(bundle, "train_info", None) or {}
    name = info.get("default_target") if isinstance(info, dict) else None
    if name in bundle.speakers:
        return name
    for spk in bundle.speakers:
        if spk.startswith("T"):
            return spk
    return bundle.speakers[0]


def _check_speaker(bundle, name: str) -> str:
    bundle.speaker_id(name)  # BundleError listing the speakers when unknown
    return name


def estimate_source_stats(feats: Features, silence_db: float) -> SourceStats:
    """Statistics of one utterance, so that an unseen speaker can be normalized.

    Parameters
    ----------
    feats : Features
        With ``body`` (T, M) and ``f0`` (T,).
    silence_db : float
        Frames below ``mean power + silence_db`` are left out of the mcep statistics.

    Returns
    -------
    SourceStats
        ``mcep_mean``/``mcep_std`` (M,) over non-silent frames (all frames when fewer
        than 10 are non-silent); ``lf0_mean``/``lf0_std`` over voiced frames (NaN when
        fewer than 2 are voiced: the f0 transform then keeps the source f0 scale, see
        :func:`convert_features`).
    """
    body = feats.body
    mask = feats.nonsilent(silence_db)
    if np.count_nonzero(mask) < 10:
        mask = np.ones(len(body), dtype=bool)
    mean = body[mask].mean(axis=0)
    std = np.maximum(body[mask].std(axis=0), 1e-6)
    lf0 = np.log(feats.f0[feats.f0 > 0])
    if lf0.size >= 2:
        lf0_mean, lf0_std = float(lf0.mean()), float(lf0.std())
    else:
        lf0_mean = lf0_std = float("nan")
    return SourceStats(mean, std, lf0_mean, lf0_std, origin="input")


def speaker_source_stats(bundle, speaker: str) -> SourceStats:
    """:class:`SourceStats` of a training speaker of the bundle (BundleError if unknown)."""
    _check_speaker(bundle, speaker)
    st = bundle.stats[speaker]
    return SourceStats(np.asarray(stat(st, "mcep_mean"), dtype=np.float64),
                       np.asarray(stat(st, "mcep_std"), dtype=np.float64),
                       float(stat(st, "lf0_mean", np.nan)), float(stat(st, "lf0_std", np.nan)),
                       origin=speaker)


def _convert_lf0(f0: np.ndarray, src: SourceStats, tgt, target: str) -> np.ndarray:
    from .f0 import convert_f0

    if not np.any(f0 > 0):
        return f0.copy()
    tgt_mean, tgt_std = stat(tgt, "lf0_mean"), stat(tgt, "lf0_std")
    if tgt_mean is None or tgt_std is None:
        raise BundleError(f"the model has no log-f0 statistics for target {target}")
    # Too few voiced input frames for a std: keep the source's f0 spread (shift only).
    src_std = src.lf0_std if np.isfinite(src.lf0_std) and src.lf0_std > 1e-6 else tgt_std
    src_mean = src.lf0_mean if np.isfinite(src.lf0_mean) else float(np.mean(np.log(f0[f0 > 0])))
    return np.asarray(convert_f0(f0, src_mean, src_std, float(tgt_mean), float(tgt_std)),
                      dtype=np.float64)


def apply_postfilter(body: np.ndarray, target_stats, kind: str, alpha: float = 1.0,
                     ms_fft: int = 256, mask: Optional[np.ndarray] = None) -> np.ndarray:
    """GV or MS postfilter of a converted body toward the target's natural statistics.

    Parameters
    ----------
    body : ndarray, shape (T, M)
    target_stats : SpeakerStats
        Provides ``gv`` (M,) and ``ms`` (F, M).
    kind : {"none", "gv", "ms"}
    alpha : float
        Strength in [0, 1] (1 = match the target fully).
    ms_fft : int
        Modulation-spectrum FFT length the statistics were computed with.
    mask : ndarray of bool, shape (T,), optional
        Frames the postfilter works on (the non-silent ones, over which the statistics
        were computed); the others are returned unchanged. Default: all frames.

    Returns
    -------
    ndarray, shape (T, M)
    """
    if kind not in POSTFILTERS:
        raise ValueError(f"postfilter must be one of {POSTFILTERS}, got {kind!r}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"postfilter alpha must be in [0, 1], got {alpha}")
    if kind == "none" or alpha == 0.0:
        return body
    from . import postfilter as pf

    natural = stat(target_stats, kind)
    if natural is None:
        raise BundleError(f"the model's target statistics have no '{kind}': "
                          f"cannot apply the {kind.upper()} postfilter")
    natural = np.asarray(natural, dtype=np.float64)
    # The statistics are over non-silent frames: filter those, leave silence as it is.
    rows = np.ones(len(body), bool) if mask is None or np.count_nonzero(mask) < 2 else mask
    out = np.array(body, dtype=np.float64, copy=True)
    if kind == "gv":
        out[rows] = pf.gv_postfilter(body[rows], natural, alpha)
    else:
        out[rows] = pf.ms_postfilter(body[rows], natural, alpha, ms_fft)
    return out


# ----------------------------------------------------------------------------- API
def convert_features(bundle, feats: Features, target: Optional[str] = None,
                     source_stats: Optional[SourceStats] = None, postfilter: str = "none",
                     pf_alpha: float = 1.0) -> Features:
    """Convert analyzed features to the target speaker.

    Parameters
    ----------
    bundle : Bundle
        From :func:`vawgan.bundle.load_bundle`.
    feats : Features
        Source features, ``mcep`` (T, M+1), made with ``bundle.config.feature``.
    target : str, optional
        Target speaker; default :func:`default_target`.
    source_stats : SourceStats, optional
        Default: estimated from ``feats`` (:func:`estimate_source_stats`).
    postfilter : {"none", "gv", "ms"}
    pf_alpha : float

    Returns
    -------
    Features
        Same frames: converted ``mcep`` (c0 kept), converted ``f0``, source aperiodicity.
    """
    from .features import check_compatible

    check_compatible(feats, bundle.config.feature, "input features")
    target = _check_speaker(bundle, target or default_target(bundle))
    silence_db = bundle.config.feature.silence_db
    src = source_stats or estimate_source_stats(feats, silence_db)
    tgt = bundle.stats[target]
    body = np.asarray(bundle.convert_body(feats.body, src.mcep_mean, src.mcep_std, target),
                      dtype=np.float64)
    if body.shape != feats.body.shape:
        raise BundleError(f"model returned shape {body.shape} for input {feats.body.shape}")
    body = apply_postfilter(body, tgt, postfilter, pf_alpha, bundle.config.stats.ms_fft,
                            mask=feats.nonsilent(silence_db))
    mcep = np.column_stack([feats.c0, body])
    return feats.replace(mcep=mcep, f0=_convert_lf0(feats.f0, src, tgt, target))


def _write(conv: Features, out_path: Path, fs_out: int) -> float:
    from .features import synthesize

    y = synthesize(conv)
    y = resample(y, conv.fs, fs_out)
    write_audio(out_path, y, fs_out)
    return len(y) / fs_out


def convert_file(bundle, in_path: PathLike, out_path: PathLike, target: Optional[str] = None,
                 source: Optional[str] = None, postfilter: str = "none", pf_alpha: float = 1.0,
                 sr: Optional[int] = None, reference: Optional[PathLike] = None,
                 metrics_on: str = "features", feats: Optional[Features] = None,
                 fs_orig: Optional[int] = None) -> Dict[str, Any]:
    """Convert one audio file and write the result atomically.

    Parameters
    ----------
    bundle : Bundle
    in_path, out_path : path
        ``out_path`` must end in .wav or .flac and must not be the input.
    target, source : str, optional
        Speakers of the bundle; ``source=None`` estimates the source statistics from
        the input.
    postfilter : {"none", "gv", "ms"}
    pf_alpha : float
    sr : int, optional
        Output rate; default the input file's rate.
    reference : path, optional
        Natural target recording of the same sentence (adds MCD, F0 RMSE, ...).
    metrics_on : {"features", "output", "none"}
        What the metrics are computed on (see the module docstring).
    feats, fs_orig : optional
        Already-made analysis of ``in_path`` (with ``bundle.config.feature``).

    Returns
    -------
    dict
        ``input``, ``output``, ``source``, ``target``, ``postfilter``, ``fs``,
        ``duration_s``, ``n_frames``, ``metrics_on``, ``metrics`` (see
        :func:`vawgan.uttmetrics.utterance_metrics` for the keys and units).
    """
    in_path, out_path = Path(in_path), Path(out_path)
    check_output_path(in_path, out_path)
    if metrics_on not in ("features", "output", "none"):
        raise ValueError(f"metrics_on must be 'features', 'output' or 'none', got {metrics_on!r}")
    cfg: FeatureConfig = bundle.config.feature
    target = _check_speaker(bundle, target or default_target(bundle))
    src_stats = speaker_source_stats(bundle, source) if source else None
    if feats is None:
        feats, fs_orig = analyze_file(in_path, cfg)
    conv = convert_features(bundle, feats, target, src_stats, postfilter, pf_alpha)
    fs_out = int(sr or fs_orig or cfg.fs)
    duration = _write(conv, out_path, fs_out)
    metrics: Dict[str, float] = {}
    if metrics_on != "none":
        judged = analyze_file(out_path, cfg)[0] if metrics_on == "output" else conv
        ref = analyze_file(reference, cfg)[0] if reference is not None else None
        tgt = bundle.stats[target]
        metrics = utterance_metrics(judged, silence_db=cfg.silence_db,
                                    ms_fft=bundle.config.stats.ms_fft, target_gv=stat(tgt, "gv"),
                                    target_ms=stat(tgt, "ms"), ref=ref)
    return {"input": str(in_path), "output": str(out_path), "kind": bundle.kind,
            "source": source or "input", "target": target, "postfilter": postfilter,
            "pf_alpha": pf_alpha, "fs": fs_out, "duration_s": round(duration, 4),
            "n_frames": feats.n_frames, "metrics_on": metrics_on, "metrics": metrics}


# ----------------------------------------------------------------------------- vawgan-convert
def add_single_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="audio file to convert (any rate, mono or not)")
    parser.add_argument("output", type=Path, help="converted audio (.wav or .flac), written atomically")
    _add_model_arguments(parser)
    parser.add_argument("--sr", type=int, default=None,
                        help="output sample rate (default: the input's own rate)")
    parser.add_argument("--reference", type=Path, default=None,
                        help="natural target recording of the same sentence: adds MCD, F0 RMSE, "
                             "log-F0 correlation and V/UV error")
    parser.add_argument("--metrics-on", choices=("features", "output", "none"), default="features",
                        help="compute the metrics on the converted features before synthesis "
                             "(default, free) or on a re-analysis of the written output (the "
                             "code path of 'vawgan evaluate'), or skip them")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def _add_model_arguments(parser: argparse.ArgumentParser, required_model: bool = False) -> None:
    parser.add_argument("--model", type=Path, default=None, required=required_model,
                        help="model bundle (.pt from 'vawgan train'); default: the packaged "
                             "vawgan/pretrained/vcc2016_vawgan.pt")
    parser.add_argument("--target", default=None,
                        help="target speaker (default: the bundle's default target, e.g. the "
                             "first speaker whose name starts with T)")
    parser.add_argument("--source", default=None,
                        help="training speaker whose statistics normalize the input (default: "
                             "statistics estimated from the input itself)")
    parser.add_argument("--postfilter", choices=POSTFILTERS, default="gv",
                        help="postfilter toward the target's natural GV or modulation spectrum "
                             "(default gv: on VCC2016 dev it brings the GV distance to that of "
                             "natural speech for +0.7 dB MCD; 'none' gives the lowest MCD; "
                             "see docs/results.md)")
    parser.add_argument("--pf-alpha", type=float, default=1.0,
                        help="postfilter strength in [0, 1] (default 1: match the target)")


def _check_common_args(args) -> None:
    if not 0.0 <= args.pf_alpha <= 1.0:
        raise VawganError(f"--pf-alpha {args.pf_alpha}: must be in [0, 1]")
    if getattr(args, "sr", None) is not None and not 8000 <= args.sr <= 192000:
        raise VawganError(f"--sr {args.sr}: must be between 8000 and 192000 Hz")


def _load_bundle(path: Path):
    from .bundle import load_bundle

    return load_bundle(path)


def run_single(args) -> int:
    """``vawgan-convert in out``: returns 0; errors are VawganError (one line)."""
    t0 = time.perf_counter()
    _check_common_args(args)
    model = resolve_model(args.model)
    check_output_path(args.input, args.output)
    if args.reference is not None and not args.reference.is_file():
        raise AudioError(args.reference, "no such reference file")
    bundle = _load_bundle(model)  # numpy only (format 2): a few tens of ms
    info = convert_file(bundle, args.input, args.output, args.target, args.source,
                        args.postfilter, args.pf_alpha, args.sr, args.reference,
                        args.metrics_on)
    info["model"] = str(model)
    info["seconds"] = round(time.perf_counter() - t0, 3)
    if args.json:
        print(json.dumps(info, indent=1))
    else:
        src = info["source"] if args.source else "statistics of the input"
        print(f"{args.input} -> {args.output} ({bundle.kind}, {src} -> {info['target']}, "
              f"postfilter {args.postfilter}, {info['fs']} Hz, {info['duration_s']:.2f} s)")
        if info["metrics"]:
            figures = ", ".join(f"{k} {v:.4g}" for k, v in info["metrics"].items())
            print(f"metrics on the converted {args.metrics_on}: {figures}")
    return 0


_MOVED = ("collect_audio", "add_arguments", "run", "AUDIO_SUFFIXES")


def __getattr__(name: str):  # the batch command moved to vawgan.convert_batch
    if name in _MOVED:
        from . import convert_batch

        return getattr(convert_batch, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
