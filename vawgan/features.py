"""The one feature pipeline: WAV -> WORLD -> mel-cepstrum + log-f0 + coded aperiodicity.

Training data extraction, conversion and evaluation all call :func:`analyze` (and
:func:`analyze_file`), so the three can never drift apart.

Per frame (5 ms by default) a :class:`Features` holds

* ``f0`` (T,): fundamental frequency in Hz, 0 where unvoiced (Harvest, or DIO + StoneMask);
* ``mcep`` (T, 40): mel-cepstrum c0..c39 of the CheapTrick envelope (pysptk
  conventions, all-pass constant from the sample rate). ``c0`` is the energy term,
  kept apart from the model; ``mcep[:, 1:]`` are the 39 dims the model converts;
* ``coded_ap`` (T, B): D4C aperiodicity coded into B bands (``pyworld.code_aperiodicity``);
* ``power_db`` (T,): frame power in dB of the envelope, used to find silence.

Examples
--------
>>> import numpy as np
>>> from vawgan.config import FeatureConfig
>>> from vawgan.features import analyze, synthesize
>>> fs = 16000
>>> t = np.arange(fs) / fs
>>> x = 0.3 * np.sin(2 * np.pi * 150 * t) + 0.01 * np.random.default_rng(0).normal(size=fs)
>>> feats = analyze(x, fs, FeatureConfig())
>>> feats.mcep.shape[1], feats.n_frames
(40, 201)
>>> y = synthesize(feats)   # WORLD resynthesis at feats.fs
"""

from __future__ import annotations

import dataclasses
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from .audio import check_signal, load_audio
from .corpus import FEATURE_SUFFIX
from . import chunks
from .chunks import frame_energy, pieces
from .config import FeatureConfig
from .errors import AudioError, FeatureError
from .io import PathLike, atomic_path
from .mcep import mc2sp, sp2mc

#: bump when the meaning of a feature file changes; old dumps are then re-extracted
FEATURE_FORMAT = 1

_ARRAYS = ("f0", "mcep", "coded_ap", "power_db")


@dataclass
class Features:
    """WORLD-derived features of one utterance (all arrays float64, T frames)."""

    f0: np.ndarray  #: (T,) Hz, 0 = unvoiced
    mcep: np.ndarray  #: (T, order+1) c0..cM
    coded_ap: np.ndarray  #: (T, n_bands) coded aperiodicity
    power_db: np.ndarray  #: (T,) frame power of the envelope in dB
    fs: int  #: sample rate of the analysis
    frame_period: float  #: ms
    alpha: float  #: all-pass constant of the mel-cepstrum
    fft_size: int  #: CheapTrick FFT size
    #: mean power of the analysed signal in dB (10 log10 mean x^2): the level a
    #: conversion's output is given; NaN when unknown (features read from a dump)
    level_db: float = float("nan")

    def __post_init__(self):
        t = len(self.f0)
        for name in _ARRAYS:
            a = getattr(self, name)
            if a.shape[0] != t:
                raise FeatureError(f"features: {name} has {a.shape[0]} frames, f0 has {t}")

    @property
    def n_frames(self) -> int:
        return int(self.f0.shape[0])

    @property
    def c0(self) -> np.ndarray:
        """(T,) energy coefficient."""
        return self.mcep[:, 0]

    @property
    def body(self) -> np.ndarray:
        """(T, order) c1..cM: what the model converts."""
        return self.mcep[:, 1:]

    @property
    def vuv(self) -> np.ndarray:
        """(T,) bool, True where voiced."""
        return self.f0 > 0

    @property
    def lf0(self) -> np.ndarray:
        """(T,) natural log of f0 where voiced, 0 where unvoiced."""
        out = np.zeros_like(self.f0)
        v = self.f0 > 0
        out[v] = np.log(self.f0[v])
        return out

    def nonsilent(self, silence_db: float = -20.0) -> np.ndarray:
        """(T,) bool mask of frames whose power is above ``mean power + silence_db``.

        The reference is the utterance's mean linear power (sprocket's normalized
        power, ``npow``), so the mask does not depend on the recording level.
        """
        mean_db = 10.0 * np.log10(np.mean(10.0 ** (self.power_db / 10.0)))
        return self.power_db > mean_db + silence_db

    def duration(self) -> float:
        return self.n_frames * self.frame_period / 1000.0

    def replace(self, **changes) -> "Features":
        return dataclasses.replace(self, **changes)


def _f0(x: np.ndarray, fs: int, cfg: FeatureConfig) -> Tuple[np.ndarray, np.ndarray]:
    import pyworld

    if cfg.f0_method == "harvest":
        f0, t = pyworld.harvest(x, fs, f0_floor=cfg.f0_floor, f0_ceil=cfg.f0_ceil,
                                frame_period=cfg.frame_period)
    else:
        f0, t = pyworld.dio(x, fs, f0_floor=cfg.f0_floor, f0_ceil=cfg.f0_ceil,
                            frame_period=cfg.frame_period)
        f0 = pyworld.stonemask(x, f0, t, fs)
    return f0, t


def _analyze_arrays(x: np.ndarray, fs: int, cfg: FeatureConfig, fft_size: int, alpha: float
                    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """WORLD analysis of one piece: (f0, mcep, coded_ap, power_db)."""
    import pyworld

    f0, t = _f0(x, fs, cfg)
    sp = pyworld.cheaptrick(x, f0, t, fs, fft_size=fft_size)
    ap = pyworld.d4c(x, f0, t, fs, fft_size=fft_size)
    sp = np.maximum(sp, 1e-16)
    mcep = sp2mc(sp, cfg.mcep_order, alpha)
    coded_ap = pyworld.code_aperiodicity(ap, fs)
    power_db = 10.0 * np.log10(np.mean(sp, axis=1))
    return f0, mcep, coded_ap, power_db


def _analyze_chunked(x: np.ndarray, fs: int, cfg: FeatureConfig, hop: int, fft_size: int,
                     alpha: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_analyze_arrays` of a long signal, piece by piece (:mod:`vawgan.chunks`):
    memory bounded by one piece, time linear in length, Ctrl-C acts between pieces."""
    n = len(x)
    t_all = n // hop + 1
    out = None
    for a, b, s0f, s1f in pieces(frame_energy(x, hop), 1000.0 / cfg.frame_period):
        seg = np.ascontiguousarray(x[s0f * hop: min(n, s1f * hop)], dtype=np.float64)
        arrays = _analyze_arrays(seg, fs, cfg, fft_size, alpha)
        if out is None:
            out = [np.empty((t_all,) + a_.shape[1:], dtype=np.float64) for a_ in arrays]
        for dst, src in zip(out, arrays):
            dst[a:b] = src[a - s0f: b - s0f]
    return tuple(out)


def signal_level_db(x: np.ndarray) -> float:
    """Mean power of a signal in dB: ``10 log10(mean(x**2))`` (-inf for all zeros)."""
    if not len(x):
        return float("nan")
    step = 1 << 20  # blocks, float64 sums: no whole-signal temporary for an hour of audio
    total = sum(float(np.dot(b, b)) for b in
                (np.asarray(x[i: i + step], dtype=np.float64) for i in range(0, len(x), step)))
    with np.errstate(divide="ignore"):
        return float(10.0 * np.log10(total / len(x)))


def analyze(x: np.ndarray, fs: int, cfg: Optional[FeatureConfig] = None,
            name: Optional[PathLike] = None, check: bool = True) -> Features:
    """WORLD analysis of a mono signal at the configured rate.

    Parameters
    ----------
    x : ndarray, shape (n_samples,)
        Mono signal in [-1, 1]; must already be at ``cfg.fs`` (``analyze_file``
        resamples).
    fs : int
        Its sample rate; must equal ``cfg.fs``.
    cfg : FeatureConfig, optional
    name : path, optional
        Used in error messages.
    check : bool
        Check the signal (:func:`vawgan.audio.check_signal`: silence, length,
        clipping); False when the caller has done so (``analyze_file``).

    Returns
    -------
    Features
    """

    cfg = cfg or FeatureConfig()
    if fs != cfg.fs:
        raise ValueError(f"analyze: signal rate {fs} != configured rate {cfg.fs}; "
                         "resample first (analyze_file does)")
    if check:
        check_signal(x, fs, name, min_seconds=cfg.min_frames * cfg.frame_period / 1000.0)
    fft_size = cfg.resolved_fft_size()
    alpha = cfg.resolved_alpha()
    hop = fs * cfg.frame_period / 1000.0
    if len(x) > chunks.LONG_SECONDS * fs and hop.is_integer():  # in pieces cut at pauses
        arrays = _analyze_chunked(x, fs, cfg, int(hop), fft_size, alpha)
    else:
        arrays = _analyze_arrays(np.ascontiguousarray(x, dtype=np.float64), fs, cfg,
                                 fft_size, alpha)
    f0, mcep, coded_ap, power_db = arrays
    feats = Features(f0=f0, mcep=mcep, coded_ap=coded_ap, power_db=power_db, fs=fs,
                     frame_period=cfg.frame_period, alpha=alpha, fft_size=fft_size,
                     level_db=signal_level_db(x))
    if feats.n_frames < cfg.min_frames:
        raise AudioError(name, f"too short ({feats.n_frames} frames; need {cfg.min_frames})")
    return feats


def analyze_file(path: PathLike, cfg: Optional[FeatureConfig] = None) -> Tuple[Features, int]:
    """Read any audio file, resample to ``cfg.fs`` and analyze it.

    Returns
    -------
    feats : Features
    fs_orig : int
        The file's own rate (conversion writes its output back at it).
    """
    cfg = cfg or FeatureConfig()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
        x, fs_orig = load_audio(path, cfg.fs, min_seconds=cfg.min_frames * cfg.frame_period / 1000.0)
        return analyze(x, cfg.fs, cfg, name=path, check=False), fs_orig


#: voiced f0 that WORLD synthesis is given is kept in [SYNTH_F0_MIN, fs / 2] Hz:
#: pyworld.synthesize corrupts the heap on absurd values (e.g. 1e9 Hz)
SYNTH_F0_MIN = 10.0


def synthesis_f0(f0: np.ndarray, fs: int) -> np.ndarray:
    """``f0`` made safe for WORLD synthesis: NaN/inf/negative -> 0 (unvoiced), voiced
    values clipped to [SYNTH_F0_MIN, fs / 2]; an f0 from analysis is never changed.

    Parameters
    ----------
    f0 : ndarray, shape (T,), Hz
    fs : int

    Returns
    -------
    ndarray, shape (T,), float64, C-contiguous
    """
    f0 = np.asarray(f0, dtype=np.float64)
    voiced = np.isfinite(f0) & (f0 > 0)
    return np.where(voiced, np.clip(np.where(voiced, f0, 0.0), SYNTH_F0_MIN, fs / 2), 0.0)


def synthesize(feats: Features, f0: Optional[np.ndarray] = None,
               mcep: Optional[np.ndarray] = None) -> np.ndarray:
    """WORLD synthesis from features (optionally replacing f0 and/or mcep).

    Parameters
    ----------
    feats : Features
    f0 : ndarray, shape (T,), optional
    mcep : ndarray, shape (T, order+1), optional

    Returns
    -------
    wave : ndarray, shape (n_samples,) at ``feats.fs``
        float64; float32 for features longer than :data:`vawgan.chunks.LONG_SECONDS`,
        synthesised in pieces (an hour at 16 kHz: 230 MB instead of 460; written as
        16-bit PCM either way).
    """
    f0 = feats.f0 if f0 is None else np.asarray(f0, dtype=np.float64)
    mcep = feats.mcep if mcep is None else np.asarray(mcep, dtype=np.float64)
    if len(f0) != feats.n_frames or mcep.shape[0] != feats.n_frames:
        raise ValueError(f"synthesize: f0 ({len(f0)}) / mcep ({mcep.shape[0]}) frames != "
                         f"{feats.n_frames}")
    f0 = synthesis_f0(f0, feats.fs)
    hop = feats.fs * feats.frame_period / 1000.0
    fps = 1000.0 / feats.frame_period
    if feats.n_frames <= chunks.LONG_SECONDS * fps or not hop.is_integer():
        return _synthesize(f0, mcep, feats.coded_ap, feats)
    # long: in pieces cut at pauses (the envelopes of 10 minutes alone take 1.2 GB)
    hop = int(hop)
    y = np.empty(feats.n_frames * hop, dtype=np.float32)
    for a, b, s0, s1 in pieces(feats.power_db, fps):
        seg = _synthesize(f0[s0:s1], mcep[s0:s1], feats.coded_ap[s0:s1], feats)
        y[a * hop: b * hop] = seg[(a - s0) * hop: (b - s0) * hop]
    return y


def _synthesize(f0: np.ndarray, mcep: np.ndarray, coded_ap: np.ndarray, feats: Features
                ) -> np.ndarray:
    import pyworld

    sp = mc2sp(mcep, feats.alpha, feats.fft_size)
    ap = pyworld.decode_aperiodicity(np.ascontiguousarray(coded_ap), feats.fs, feats.fft_size)
    return pyworld.synthesize(np.ascontiguousarray(f0), np.ascontiguousarray(sp),
                              np.ascontiguousarray(ap), feats.fs, feats.frame_period)


# ----------------------------------------------------------------------------- files
def save_features(path: PathLike, feats: Features, **meta) -> None:
    """Write features to ``.npz`` atomically (extra ``meta`` values become 0-d arrays)."""
    path = Path(path)
    arrays = {k: getattr(feats, k) for k in _ARRAYS}
    arrays.update(fs=np.int64(feats.fs), frame_period=np.float64(feats.frame_period),
                  alpha=np.float64(feats.alpha), fft_size=np.int64(feats.fft_size),
                  level_db=np.float64(feats.level_db), format=np.int64(FEATURE_FORMAT))
    for k, v in meta.items():
        arrays[f"meta_{k}"] = np.asarray(v)
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def load_features(path: PathLike) -> Features:
    """Read a feature file written by :func:`save_features`; FeatureError if unusable."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            fmt = int(z["format"]) if "format" in z else -1
            if fmt != FEATURE_FORMAT:
                raise FeatureError(f"{path}: feature format {fmt}, expected {FEATURE_FORMAT}; "
                                   "re-extract")
            # level_db: absent from dumps written before it was stored (NaN: unknown)
            return Features(**{k: z[k] for k in _ARRAYS}, fs=int(z["fs"]),
                            frame_period=float(z["frame_period"]), alpha=float(z["alpha"]),
                            fft_size=int(z["fft_size"]),
                            level_db=float(z["level_db"]) if "level_db" in z else float("nan"))
    except FeatureError:
        raise
    except FileNotFoundError:
        raise FeatureError(f"{path}: no such feature file") from None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
        raise FeatureError(f"{path}: corrupt feature file ({type(e).__name__})") from None


def load_feature_meta(path: PathLike) -> dict:
    """The ``meta`` values :func:`save_features` stored with a feature file (e.g.
    ``speaker``, ``utt``, ``source``, ``fs_orig``, ``f0_method``); FeatureError if
    unreadable."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k[5:]: z[k].item() for k in z.files if k.startswith("meta_")}
    except FileNotFoundError:
        raise FeatureError(f"{path}: no such feature file") from None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
        raise FeatureError(f"{path}: corrupt feature file ({type(e).__name__})") from None


def read_input(path: PathLike, cfg: Optional[FeatureConfig] = None) -> Tuple[Features, int]:
    """Features of an input: an audio file is analysed (:func:`analyze_file`), a feature
    file of a dump (``.npz`` from ``vawgan extract``: the same analysis, done once) is
    read and checked against ``cfg``.

    Returns
    -------
    feats : Features
    fs_orig : int
        The audio file's own rate (for a feature file: the rate of the file it was
        extracted from, as stored; else the analysis rate).

    Raises
    ------
    FeatureError
        A feature file made with other settings than ``cfg`` (rate, frame period,
        FFT size, order, all-pass constant), or unreadable.
    """
    cfg = cfg or FeatureConfig()
    path = Path(path)
    if path.suffix.lower() != FEATURE_SUFFIX:
        return analyze_file(path, cfg)
    feats = load_features(path)
    check_compatible(feats, cfg, str(path))
    if feats.n_frames < cfg.min_frames:
        raise FeatureError(f"{path}: too short ({feats.n_frames} frames; need {cfg.min_frames})")
    fs_orig = load_feature_meta(path).get("fs_orig", feats.fs)
    return feats, int(fs_orig)


def check_compatible(feats: Features, cfg: FeatureConfig, where: str = "features") -> None:
    """Raise FeatureError unless ``feats`` were made with the settings of ``cfg``."""
    want = (cfg.fs, cfg.frame_period, cfg.resolved_fft_size(), cfg.mcep_order + 1)
    got = (feats.fs, feats.frame_period, feats.fft_size, feats.mcep.shape[1])
    if want != got or abs(feats.alpha - cfg.resolved_alpha()) > 1e-9:
        raise FeatureError(f"{where}: made with fs/frame_period/fft/dims {got}, "
                           f"config wants {want}")
