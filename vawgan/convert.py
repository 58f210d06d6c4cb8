"""Voice conversion with a model bundle: the API behind ``vawgan-convert`` and ``vawgan convert``.

The commands are :mod:`vawgan.commands.convert_one` (``vawgan-convert``, one file) and
:mod:`vawgan.commands.convert` (``vawgan convert``, many files in parallel through
:mod:`vawgan.convert_batch`); both use a :class:`Converter`, which resolves the target
speaker, the source statistics and the postfilter once.

The pipeline, identical for both commands and for the Python API:

1. :func:`vawgan.features.analyze_file` of the input (the same analysis as training),
   or, for a feature file of a dump (``.npz`` from ``vawgan extract``), that analysis
   read back (:func:`vawgan.features.read_input`);
2. the mel-cepstrum body c1..c39 goes through :meth:`Bundle.convert_body`: normalized
   with the *source* statistics, encoded (posterior mean), decoded with the *target*
   speaker, de-normalized with the target statistics;
3. optionally a GV or MS postfilter toward the target's natural statistics;
4. c0 (energy) and the coded aperiodicity are kept from the source; f0 goes through the
   log-Gaussian transform (:func:`vawgan.postfilter.convert_f0`);
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
resampled), matplotlib, joblib or tqdm: the bundle's ONNX conversion graph runs in
onnxruntime (:mod:`vawgan.bundle`), so the command costs little more than the WORLD analysis and
synthesis themselves (``benchmarks/bench_convert.py``).

Python::

    from vawgan.bundle import load_bundle
    from vawgan.convert import Converter, convert_file
    info = convert_file(load_bundle("exp/vawgan.pt"), "in.wav", "out.wav", target="TM1")
    conv = Converter(load_bundle("exp/vawgan.pt"), target="TM1", postfilter="gv")
    for name in ("a", "b"):  # the target is resolved once, not per file
        conv.convert_file(f"{name}.wav", f"out/{name}.wav")
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np

from .audio import check_output_path, resample, write_audio
from .config import FeatureConfig
from .errors import BundleError
from .features import Features, analyze_file, read_input
from .io import PathLike
from .postfilter import DEFAULT_PF_FIRST, POSTFILTERS, check_pf_first, convert_f0, postfilter_body
from .uttmetrics import utterance_metrics

#: where the lead installs the default model (see vawgan/pretrained/README.md)
DEFAULT_MODEL = Path(__file__).resolve().parent / "pretrained" / "vcc2016_vawgan.pt"


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
    if path.is_dir():
        raise BundleError(f"{path}: is a folder, not a model bundle (give the .pt file "
                          "that 'vawgan train' wrote, e.g. exp/<tag>/vawgan.pt)")
    if not path.is_file():
        raise BundleError(f"{path}: no such model bundle")
    return path


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


def resolve_target(bundle, target: Optional[str] = None) -> str:
    """``target``, else :func:`default_target`; BundleError naming the speakers if unknown."""
    return _check_speaker(bundle, target or default_target(bundle))


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
    return SourceStats(st.mcep_mean.copy(), st.mcep_std.copy(), st.lf0_mean, st.lf0_std,
                       origin=speaker)


def _convert_lf0(f0: np.ndarray, src: SourceStats, tgt) -> np.ndarray:
    """The log-Gaussian f0 transform of one utterance toward ``tgt`` (SpeakerStats)."""
    if not np.any(f0 > 0):
        return f0.copy()
    tgt_mean, tgt_std = tgt.lf0_mean, tgt.lf0_std
    # Too few voiced input frames for a std: keep the source's f0 spread (shift only).
    src_std = src.lf0_std if np.isfinite(src.lf0_std) and src.lf0_std > 1e-6 else tgt_std
    src_mean = src.lf0_mean if np.isfinite(src.lf0_mean) else float(np.mean(np.log(f0[f0 > 0])))
    return np.asarray(convert_f0(f0, src_mean, src_std, float(tgt_mean), float(tgt_std)),
                      dtype=np.float64)


def apply_postfilter(body: np.ndarray, target_stats, kind: str, alpha: float = 1.0,
                     ms_fft: int = 256, mask: Optional[np.ndarray] = None,
                     inplace: bool = False, first: int = 1) -> np.ndarray:
    """GV or MS postfilter of a converted body toward the target's natural statistics.

    Parameters
    ----------
    body : ndarray, shape (T, M)
    target_stats : SpeakerStats
        Its :meth:`~vawgan.stats.SpeakerStats.postfilter_target`: ``gv`` (M,) over
        ``gv_resynth_ratio`` when measured, ``ms`` (F, M).
    kind : {"none", "gv", "ms"}
    alpha : float
        Strength in [0, 1] (1 = match the target fully).
    ms_fft : int
        Modulation-spectrum FFT length the statistics were computed with.
    mask : ndarray of bool, shape (T,), optional
        Frames the postfilter works on (the non-silent ones, over which the statistics
        were computed); the others are returned unchanged. Default: all frames.
    inplace : bool
        Filter ``body`` itself (see :func:`vawgan.postfilter.postfilter_body`).
    first : int
        First cepstral order filtered (1 = all; conversion's default is
        :data:`vawgan.postfilter.DEFAULT_PF_FIRST`).

    Returns
    -------
    ndarray, shape (T, M)

    See Also
    --------
    vawgan.postfilter.postfilter_body : the computation, on the statistic itself.
    """
    natural = target_stats.postfilter_target(kind) if kind in POSTFILTERS[1:] else None
    return postfilter_body(body, kind, natural, alpha, ms_fft, mask, inplace, first)


# ----------------------------------------------------------------------------- API
class Converter:
    """One conversion set-up: a bundle with its target, source statistics and postfilter.

    Everything that does not depend on the input is resolved here, once: the target
    speaker (default :func:`default_target`), the statistics of a training source
    speaker (when ``source`` is given) and the postfilter. A Converter is read-only
    afterwards, so threads may share one.

    Parameters
    ----------
    bundle : Bundle
        From :func:`vawgan.bundle.load_bundle`.
    target : str, optional
        Target speaker; default :func:`default_target`.
    source : str, optional
        Training speaker whose statistics normalize the input; default: statistics
        estimated from each input (:func:`estimate_source_stats`).
    postfilter : {"none", "gv", "ms"}
    pf_alpha : float
        Postfilter strength in [0, 1].
    pf_first : int
        First cepstral order the postfilter changes (default
        :data:`~vawgan.postfilter.DEFAULT_PF_FIRST`: c4..c39; 1 = every order).

    Raises
    ------
    BundleError
        ``target`` or ``source`` is not a speaker of the bundle.
    ValueError
        ``pf_first`` is not in 1..D.
    """

    def __init__(self, bundle, target: Optional[str] = None, source: Optional[str] = None,
                 postfilter: str = "none", pf_alpha: float = 1.0,
                 pf_first: int = DEFAULT_PF_FIRST):
        self.bundle = bundle
        self.target = resolve_target(bundle, target)
        self.source = source
        self.source_stats = speaker_source_stats(bundle, source) if source else None
        self.postfilter = postfilter
        self.pf_alpha = pf_alpha
        self.pf_first = check_pf_first(pf_first, bundle.n_dims)

    def convert_features(self, feats: Features,
                         source_stats: Optional[SourceStats] = None) -> Features:
        """Convert analyzed features (see :func:`convert_features`).

        Parameters
        ----------
        feats : Features
            Source features, ``mcep`` (T, M+1), made with ``bundle.config.feature``.
        source_stats : SourceStats, optional
            Overrides the Converter's (default: its ``source`` speaker's, else estimated
            from ``feats``).

        Returns
        -------
        Features
            Same frames: converted ``mcep`` (c0 kept), converted ``f0`` (within the
            analysis range), source aperiodicity.
        """
        return self._convert(feats, source_stats, keep_raw=False)[1]

    def _convert(self, feats: Features, source_stats: Optional[SourceStats] = None,
                 keep_raw: bool = True) -> Tuple[Optional[Features], Features]:
        """(converted features before the postfilter, after it): see convert_features.

        ``keep_raw=False`` returns None for the first when nobody reads it (an hour of
        input: 230 MB less)."""
        from .features import check_compatible

        bundle = self.bundle
        check_compatible(feats, bundle.config.feature, "input features")
        silence_db = bundle.config.feature.silence_db
        src = source_stats or self.source_stats or estimate_source_stats(feats, silence_db)
        tgt = bundle.stats[self.target]
        body = np.asarray(bundle.convert_body(feats.body, src.mcep_mean, src.mcep_std,
                                              self.target), dtype=np.float64)
        if body.shape != feats.body.shape:
            raise BundleError(f"model returned shape {body.shape} for input {feats.body.shape}")
        # the raw body is filtered in place when nobody reads it (an hour: 225 MB less)
        filtered = apply_postfilter(body, tgt, self.postfilter, self.pf_alpha,
                                    bundle.config.stats.ms_fft, mask=feats.nonsilent(silence_db),
                                    inplace=not keep_raw and body.flags.c_contiguous
                                    and body.flags.writeable, first=self.pf_first)
        f0 = _convert_lf0(feats.f0, src, tgt)
        # within the analysis range (a target's statistics could ask for any pitch)
        cfg = bundle.config.feature
        f0 = np.where(f0 > 0, np.clip(f0, cfg.f0_floor, cfg.f0_ceil), 0.0)
        raw = (feats.replace(mcep=np.column_stack([feats.c0, body]), f0=f0)
               if keep_raw else None)
        del body
        return raw, feats.replace(mcep=np.column_stack([feats.c0, filtered]), f0=f0)

    def convert_file(self, in_path: PathLike, out_path: PathLike, sr: Optional[int] = None,
                     reference: Optional[PathLike] = None, metrics_on: str = "features",
                     feats: Optional[Features] = None, fs_orig: Optional[int] = None,
                     check_output: bool = True) -> Dict[str, Any]:
        """Convert one audio file and write the result atomically (see :func:`convert_file`).

        ``check_output=False`` skips :func:`vawgan.audio.check_output_path` for a caller
        that has already checked ``out_path`` against ``in_path`` (``vawgan-convert``
        does so before loading the bundle).
        """
        in_path, out_path = Path(in_path), Path(out_path)
        if check_output:
            check_output_path(in_path, out_path)
        if metrics_on not in ("features", "output", "none"):
            raise ValueError(f"metrics_on must be 'features', 'output' or 'none', "
                             f"got {metrics_on!r}")
        bundle = self.bundle
        cfg: FeatureConfig = bundle.config.feature
        own = feats is None
        if own:  # audio is analysed; a dump's feature file (.npz) is read
            feats, fs_orig = read_input(in_path, cfg)
        fs_out = int(sr or fs_orig or cfg.fs)
        n_frames = feats.n_frames
        # the features before the postfilter only when their metrics are asked for
        raw, conv = self._convert(feats, keep_raw=metrics_on != "none"
                                  and self.postfilter != "none")
        if own:
            del feats  # the input's mel-cepstra are not needed any more (long inputs)
        # the reference before the output is written: an unusable one fails first
        ref = (analyze_file(reference, cfg)[0]
               if reference is not None and metrics_on != "none" else None)
        duration = _write(conv, out_path, fs_out)
        metrics: Dict[str, float] = {}
        before: Dict[str, float] = {}
        if metrics_on != "none":
            judged = analyze_file(out_path, cfg)[0] if metrics_on == "output" else conv
            tgt = bundle.stats[self.target]
            kw = dict(silence_db=cfg.silence_db, ms_fft=bundle.config.stats.ms_fft,
                      target_gv=tgt.gv, target_ms=tgt.ms)
            metrics = utterance_metrics(judged, ref=ref, **kw)
            if self.postfilter != "none":  # what the postfilter started from (features)
                before = utterance_metrics(raw, ref=ref, **kw)
        return {"input": str(in_path), "output": str(out_path), "kind": bundle.kind,
                "source": self.source or "input", "target": self.target,
                "postfilter": self.postfilter, "pf_alpha": self.pf_alpha,
                "pf_first": self.pf_first, "fs": fs_out,
                "duration_s": round(duration, 4), "n_frames": n_frames,
                "metrics_on": metrics_on, "metrics": metrics,
                "metrics_before_postfilter": before}


def convert_features(bundle, feats: Features, target: Optional[str] = None,
                     source_stats: Optional[SourceStats] = None, postfilter: str = "none",
                     pf_alpha: float = 1.0, pf_first: int = DEFAULT_PF_FIRST) -> Features:
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
    pf_alpha, pf_first
        As in :class:`Converter`.

    Returns
    -------
    Features
        Same frames: converted ``mcep`` (c0 kept), converted ``f0``, source aperiodicity.
    """
    return Converter(bundle, target, None, postfilter, pf_alpha, pf_first).convert_features(
        feats, source_stats)


def _write(conv: Features, out_path: Path, fs_out: int) -> float:
    from .features import signal_level_db, synthesize

    y = synthesize(conv)
    y = resample(y, conv.fs, fs_out)
    # the input's level: conversion keeps c0 (the mean log envelope) but moves power
    # between bands, and what lands above a narrow-band input's Nyquist frequency is cut
    # by the resampling (8 kHz speech came out ~15 dB quieter)
    if np.isfinite(conv.level_db):
        gain_db = conv.level_db - signal_level_db(y)
        if np.isfinite(gain_db):
            y *= 10.0 ** (gain_db / 20.0)  # in place: an hour of audio is 0.5 GB a copy
    write_audio(out_path, y, fs_out)
    return len(y) / fs_out


def convert_file(bundle, in_path: PathLike, out_path: PathLike, target: Optional[str] = None,
                 source: Optional[str] = None, postfilter: str = "none", pf_alpha: float = 1.0,
                 pf_first: int = DEFAULT_PF_FIRST, sr: Optional[int] = None, reference: Optional[PathLike] = None,
                 metrics_on: str = "features", feats: Optional[Features] = None,
                 fs_orig: Optional[int] = None) -> Dict[str, Any]:
    """Convert one audio file and write the result atomically.

    A shorthand for ``Converter(bundle, target, source, postfilter, pf_alpha)
    .convert_file(in_path, out_path, ...)``; to convert many files with one set-up,
    make the :class:`Converter` once.

    Parameters
    ----------
    bundle : Bundle
    in_path, out_path : path
        ``out_path`` must end in .wav or .flac and must not be the input.
    target, source : str, optional
        Speakers of the bundle; ``source=None`` estimates the source statistics from
        the input.
    postfilter : {"none", "gv", "ms"}
    pf_alpha, pf_first
        As in :class:`Converter`.
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
    check_output_path(in_path, out_path)  # before resolving anything, as vawgan-convert
    return Converter(bundle, target, source, postfilter, pf_alpha, pf_first).convert_file(
        in_path, out_path, sr, reference, metrics_on, feats, fs_orig, check_output=False)


#: bundles loaded by :func:`convert_audio`, by resolved path
_BUNDLES: Dict[Path, Any] = {}


def convert_audio(in_path: PathLike, out_path: PathLike, target: Optional[str] = None,
                  model: Optional[PathLike] = None, source: Optional[str] = None,
                  postfilter: str = "gv", pf_alpha: float = 1.0,
                  pf_first: int = DEFAULT_PF_FIRST, sr: Optional[int] = None,
                  reference: Optional[PathLike] = None,
                  metrics_on: str = "features") -> Dict[str, Any]:
    """Convert one file in one call, as ``vawgan-convert`` does (same defaults).

    ``model`` defaults to the packaged bundle; each bundle is loaded once per process
    and kept, so calling this in a loop costs one load.

    Parameters
    ----------
    in_path, out_path : path
    target : str, optional
        Target speaker (default: the bundle's default target).
    model : path, optional
    source : str, optional
        Training speaker whose statistics normalize the input (default: the input's own).
    postfilter : {"none", "gv", "ms"}
    pf_alpha, pf_first, sr, reference, metrics_on
        As in :func:`convert_file`.

    Returns
    -------
    dict
        See :func:`convert_file`.

    Examples
    --------
    >>> import vawgan
    >>> info = vawgan.convert_audio("in.wav", "out.wav", target="TM1")  # doctest: +SKIP
    """
    from .bundle import load_bundle

    path = resolve_model(model).resolve()
    if path not in _BUNDLES:
        _BUNDLES[path] = load_bundle(path)
    return convert_file(_BUNDLES[path], in_path, out_path, target, source, postfilter,
                        pf_alpha, pf_first=pf_first, sr=sr, reference=reference,
                        metrics_on=metrics_on)
