"""The metrics of one utterance: the one per-utterance path of every command.

:func:`utterance_metrics` computes every per-utterance figure that vawgan reports:
``vawgan-convert`` and ``vawgan convert`` (through :func:`vawgan.convert.convert_file`),
``vawgan evaluate`` and ``vawgan report`` (through :func:`vawgan.evaluate.evaluate`),
``vawgan analysis-synthesis``, and the recipe's ``local/compare_bundles.py`` and
``local/evaluate_pairs.py``. :func:`compare_utterances` is its part against a
reference recording: one DTW, then MCD and the F0 figures on that same path.

The array functions underneath are in :mod:`vawgan.metrics`; the frames GV and MS are
computed on (:func:`vawgan.stats.stat_frames`) and the GV / MS of a set
(:func:`vawgan.stats.set_gv_ms`) are in :mod:`vawgan.stats`.

Units, the same in every result dict and every JSON file vawgan writes:

* ``mcd``: dB (c1..c24 after DTW over the non-silent frames of both sides);
* ``f0_rmse``: Hz (aligned frame pairs voiced on both sides; NaN when there is none);
* ``logf0_corr``: Pearson correlation of log f0, in [-1, 1] (NaN with fewer than 2
  such pairs);
* ``vuv_error``: a **fraction** in [0, 1] of the aligned pairs whose voicing decisions
  differ (tables show it in percent, under a header marked ``[%]``, converting only
  when they format it);
* ``n_frames``: int, the number of aligned frame pairs (DTW path length);
* ``gv_distance``: log10 units, the mean over c1..cM of ``|log10(GV_conv / GV_natural)|``;
* ``ms_distance``: dB, RMS difference of log modulation spectra.

Example (``conv``, ``ref``: :class:`~vawgan.features.Features`; ``st``: the target's
:class:`~vawgan.stats.SpeakerStats`)::

    from vawgan.uttmetrics import utterance_metrics
    m = utterance_metrics(conv, silence_db=-20.0, ms_fft=256, target_gv=st.gv,
                          target_ms=st.ms, ref=ref)
    print(f"MCD {m['mcd']:.2f} dB, V/UV error {100 * m['vuv_error']:.1f} %")
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Dict, Optional

import numpy as np

from .metrics import (_check_n_fft, f0_rmse, global_variance, gv_distance, logf0_correlation,
                      mel_cepstral_distortion, ms_distance, vuv_error)
from .stats import stat_frames

if TYPE_CHECKING:  # pragma: no cover
    from .features import Features


#: DTW of longer pairs (non-silent frames x frames) would need more than ~0.5 GB
#: (two float64 matrices): a 100 s pair of utterances is about the limit
MAX_DTW_CELLS = 30_000_000


def compare_utterances(conv: "Features", ref: "Features", silence_db: float = -20.0,
                       mcd_dims: int = 24, return_path: bool = False) -> Dict[str, object]:
    """All frame-level metrics of one converted utterance against its reference.

    One DTW on c1..c_mcd_dims of the non-silent frames (``Features.nonsilent``) of each
    side; MCD and the F0 metrics are then computed on that same path.

    Parameters
    ----------
    conv, ref : Features
        ``mcep`` (Tc, M+1) and (Tr, M+1), ``f0`` (Tc,) and (Tr,) in Hz, the same frame
        period.
    silence_db : float
        Frames below the utterance's mean power + silence_db are left out.
    mcd_dims : int
    return_path : bool
        Also put the path (``"path": (ix, iy)``, frame indices) in the result.

    Returns
    -------
    dict with ``mcd`` (dB), ``f0_rmse`` (Hz), ``logf0_corr``, ``vuv_error`` (fraction),
    ``n_frames`` (int, path length).
    """
    if conv.frame_period != ref.frame_period:
        raise ValueError(f"compare_utterances: frame periods differ ({conv.frame_period} "
                         f"vs {ref.frame_period} ms)")
    cm, rm = conv.nonsilent(silence_db), ref.nonsilent(silence_db)
    if int(cm.sum()) * int(rm.sum()) <= MAX_DTW_CELLS:
        mcd, (ix, iy) = mel_cepstral_distortion(conv.mcep, ref.mcep, dims=mcd_dims,
                                                conv_mask=cm, ref_mask=rm, return_path=True)
    elif conv.n_frames == ref.n_frames:  # same frame grid (a resynthesis): frame by frame
        mcd, (ix, iy) = mel_cepstral_distortion(conv.mcep, ref.mcep, dims=mcd_dims,
                                                conv_mask=rm, ref_mask=rm, align=False,
                                                return_path=True)
    else:
        import warnings

        warnings.warn(f"{int(cm.sum())} x {int(rm.sum())} frames: too long for DTW "
                      f"(at most {MAX_DTW_CELLS:.0e} cells); MCD and F0 metrics left out",
                      stacklevel=2)
        nan = float("nan")
        out = {"mcd": nan, "f0_rmse": nan, "logf0_corr": nan, "vuv_error": nan, "n_frames": 0}
        if return_path:
            out["path"] = (np.zeros(0, dtype=int), np.zeros(0, dtype=int))
        return out
    fc, fr = conv.f0[ix], ref.f0[iy]
    out: Dict[str, object] = {
        "mcd": mcd,
        "f0_rmse": f0_rmse(fc, fr),
        "logf0_corr": logf0_correlation(fc, fr),
        "vuv_error": vuv_error(fc, fr),
        "n_frames": int(ix.size),
    }
    if return_path:
        out["path"] = (ix, iy)
    return out


def _natural(a, name: str, shape) -> np.ndarray:
    g = np.asarray(a, dtype=np.float64)
    if g.shape != shape:
        raise ValueError(f"utterance_metrics: {name} must have shape {shape}, got {g.shape}")
    if not np.all(np.isfinite(g)):
        raise ValueError(f"utterance_metrics: {name} contains NaN or infinite values")
    return g


def utterance_metrics(conv: "Features", *, silence_db: float, ms_fft: Optional[int] = None,
                      target_gv: Optional[np.ndarray] = None,
                      target_ms: Optional[np.ndarray] = None, ref: Optional["Features"] = None,
                      mcd_dims: int = 24) -> Dict[str, float]:
    """Every per-utterance figure of one (converted) utterance, in the units of the module.

    Parameters
    ----------
    conv : Features
        The utterance judged: converted features, or a re-analysis of a written file;
        ``mcep`` (T, M+1), ``f0`` (T,) in Hz.
    silence_db : float
        Frames below the utterance's mean power + silence_db are left out of every
        figure (``feature.silence_db``).
    ms_fft : int, optional
        Modulation-spectrum FFT length in frames that ``target_ms`` was computed with;
        required with ``target_ms``.
    target_gv : ndarray, shape (M,), optional
        Natural GV to compare with (a speaker's ``SpeakerStats.gv``, or
        :func:`vawgan.stats.set_gv_ms` of natural references); adds ``gv_distance``.
    target_ms : ndarray, shape (ms_fft // 2 + 1, M), dB, optional
        Natural modulation spectrum (``SpeakerStats.ms``, or from
        :func:`vawgan.stats.set_gv_ms`); adds ``ms_distance``.
    ref : Features, optional
        A natural recording of the same sentence, same frame period: adds ``mcd``,
        ``f0_rmse``, ``logf0_corr``, ``vuv_error`` and ``n_frames``
        (:func:`compare_utterances`).
    mcd_dims : int
        MCD over c1..c_mcd_dims.

    Returns
    -------
    dict
        ``gv_distance`` (log10 units, mean |log10 GV / GV_natural|) and ``ms_distance``
        (dB) over c1..cM of the non-silent frames (:func:`vawgan.stats.stat_frames`),
        when the natural statistic is given and at least 2 frames are non-silent; with
        the GV also ``gv_distance_mcd`` over c1..c_mcd_dims (the dims MCD measures) and
        ``gv_ratio`` / ``gv_ratio_mcd``, the geometric mean of GV / GV_natural over
        c1..cM / c1..c_mcd_dims (1 = natural, below 1 = over-smoothed); with ``ref``, ``mcd`` (dB),
        ``f0_rmse`` (Hz), ``logf0_corr``, ``vuv_error`` (fraction in [0, 1]) and
        ``n_frames`` (int). All values are Python floats but ``n_frames``.
    """
    if isinstance(silence_db, bool) or not isinstance(silence_db, (int, float, np.number)) \
            or not math.isfinite(silence_db):
        raise ValueError(f"utterance_metrics: silence_db must be a finite number of dB, "
                         f"got {silence_db!r}")
    if isinstance(mcd_dims, bool) or not isinstance(mcd_dims, (int, np.integer)) or mcd_dims < 1:
        raise ValueError(f"utterance_metrics: mcd_dims must be an integer >= 1, got {mcd_dims!r}")
    dim = conv.mcep.shape[1] - 1
    if target_gv is not None:
        target_gv = _natural(target_gv, "target_gv", (dim,))
    if target_ms is not None:
        if ms_fft is None:
            raise ValueError("utterance_metrics: target_ms needs the ms_fft it was computed with")
        ms_fft = _check_n_fft(ms_fft)
        target_ms = _natural(target_ms, "target_ms", (ms_fft // 2 + 1, dim))

    out: Dict[str, float] = {}
    body = stat_frames(conv, silence_db)
    if len(body) >= 2:
        if target_gv is not None:
            gv = global_variance(body)
            k = min(mcd_dims, dim)
            out["gv_distance"] = gv_distance(gv, target_gv)
            out["gv_distance_mcd"] = gv_distance(gv[:k], target_gv[:k])
            with np.errstate(divide="ignore", invalid="ignore"):
                lr = np.log10(np.maximum(gv, 1e-300) / target_gv)
            out["gv_ratio"] = float(10.0 ** np.mean(lr))
            out["gv_ratio_mcd"] = float(10.0 ** np.mean(lr[:k]))
        if target_ms is not None:
            out["ms_distance"] = ms_distance(body, target_ms, n_fft=ms_fft, precomputed="target")
    if ref is not None:
        cmp = compare_utterances(conv, ref, silence_db, mcd_dims)
        out.update({k: float(v) for k, v in cmp.items() if k != "n_frames"})
        out["n_frames"] = cmp["n_frames"]
    return out


def metric_dims(n_dims: int, mcd_dims: int = 24) -> Dict[str, str]:
    """Which mel-cepstral coefficients each figure of :func:`utterance_metrics` covers.

    Parameters
    ----------
    n_dims : int
        M, the coefficients c1..cM of the features (39 for VCC2016's order 39).
    mcd_dims : int
        The ``mcd_dims`` given to :func:`utterance_metrics`.

    Returns
    -------
    dict
        ``{figure: "c1..cK"}`` for ``gv_distance``, ``gv_ratio`` and ``ms_distance``
        (c1..cM), ``gv_distance_mcd``, ``gv_ratio_mcd`` and ``mcd`` (c1..c_mcd_dims,
        at most M).

    Examples
    --------
    >>> metric_dims(39)["gv_ratio_mcd"]
    'c1..c24'
    """
    full, low = f"c1..c{n_dims}", f"c1..c{min(mcd_dims, n_dims)}"
    return {"gv_distance": full, "gv_ratio": full, "ms_distance": full,
            "gv_distance_mcd": low, "gv_ratio_mcd": low, "mcd": low}
