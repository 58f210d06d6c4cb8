"""Objective metrics: over-smoothing (GV, MS), MCD, F0 errors.

All functions are numpy in, numpy out. Functions over a *set* of utterances accept,
like ``nnmnkwii.metrics``,

* one utterance, an ndarray of shape (T, D);
* a list (or tuple) of utterances, each (T_i, D) with the same D;
* a padded batch, shape (B, T, D), with ``lengths`` (B,) giving each utterance's
  number of valid frames (``lengths=None`` means all T frames are valid).

Over-smoothing is measured as in the voice conversion / synthesis literature:

* global variance (GV): Toda, Black & Tokuda, "Voice conversion based on
  maximum-likelihood estimation of spectral parameter trajectory", IEEE TASLP 15(8),
  2007 (GV first in Toda & Tokuda, IEICE Trans. Inf. & Syst. E90-D(5), 2007);
* modulation spectrum (MS): Takamichi, Toda, Black, Neubig, Sakti & Nakamura,
  "Postfilters to modify the modulation spectrum for statistical parametric speech
  synthesis", IEEE/ACM TASLP 24(4), 2016.

Mel-cepstral distortion: Kubichek, "Mel-cepstral distance measure for objective
speech quality assessment", PACRIM 1993; Kominek, Schultz & Black, "Synthesizer voice
quality of new languages calibrated with mean mel cepstral distortion", SLTU 2008.

The metrics of one utterance's ``Features`` (every figure the commands report per
utterance, with their units) are :func:`vawgan.uttmetrics.utterance_metrics`, built on
these functions.

Examples
--------
>>> import numpy as np
>>> from vawgan.metrics import global_variance, gv_distance
>>> x = np.random.default_rng(0).normal(size=(500, 3))
>>> global_variance(x).shape
(3,)
>>> round(gv_distance(x, x), 6)
0.0
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

ArrayOrList = Union[np.ndarray, Sequence[np.ndarray]]

#: power floor (linear) before taking the log of a modulation spectrum: -200 dB
_MS_FLOOR = 1e-20
#: 10 / ln(10): converts a natural-log cepstral distance to dB
_DB_FACTOR = 10.0 / math.log(10.0)


# ----------------------------------------------------------------------------- inputs
def as_utterances(x: ArrayOrList, lengths: Optional[Sequence[int]] = None,
                  min_frames: int = 1, name: str = "x") -> List[np.ndarray]:
    """Normalize the accepted input forms into a list of (T_i, D) float64 arrays.

    Parameters
    ----------
    x : ndarray (T, D) or (B, T, D), or list of ndarray (T_i, D)
    lengths : sequence of int, shape (B,), optional
        Valid frames of each batch item; only with a (B, T, D) array.
    min_frames : int
        Each utterance must have at least this many frames.
    name : str
        Argument name for error messages.

    Returns
    -------
    list of ndarray, each (T_i, D)
    """
    if isinstance(x, (list, tuple)):
        if lengths is not None:
            raise ValueError(f"{name}: lengths is only for a padded (B, T, D) array")
        utts = [np.asarray(u, dtype=np.float64) for u in x]
    else:
        a = np.asarray(x, dtype=np.float64)
        if a.ndim == 2:
            if lengths is not None:
                raise ValueError(f"{name}: lengths is only for a padded (B, T, D) array")
            utts = [a]
        elif a.ndim == 3:
            if lengths is None:
                utts = list(a)
            else:
                lens = np.asarray(lengths)
                if lens.shape != (a.shape[0],) or not np.issubdtype(lens.dtype, np.integer):
                    raise ValueError(f"{name}: lengths must be {a.shape[0]} integers, "
                                     f"got shape {lens.shape} dtype {lens.dtype}")
                if np.any(lens < 0) or np.any(lens > a.shape[1]):
                    raise ValueError(f"{name}: lengths must be in [0, {a.shape[1]}]")
                utts = [a[b, :int(n)] for b, n in enumerate(lens)]
        else:
            raise ValueError(f"{name}: expected (T, D), (B, T, D) or a list of (T, D), "
                             f"got shape {a.shape}")
    if not utts:
        raise ValueError(f"{name}: no utterances")
    dims = {u.shape[1] if u.ndim == 2 else None for u in utts}
    if any(u.ndim != 2 for u in utts) or len(dims) != 1:
        raise ValueError(f"{name}: every utterance must be (T, D) with the same D; "
                         f"got shapes {[u.shape for u in utts][:5]}")
    for i, u in enumerate(utts):
        if u.shape[0] < min_frames:
            raise ValueError(f"{name}: utterance {i} has {u.shape[0]} frames, "
                             f"need at least {min_frames}")
        if not np.all(np.isfinite(u)):
            raise ValueError(f"{name}: utterance {i} contains NaN or infinite values")
    return utts


def _check_n_fft(n_fft: int) -> int:
    if isinstance(n_fft, bool) or not isinstance(n_fft, (int, np.integer)) or n_fft < 2:
        raise ValueError(f"n_fft must be an integer >= 2, got {n_fft!r}")
    return int(n_fft)


# ----------------------------------------------------------------------------- GV / MS
def global_variance(x: ArrayOrList, lengths: Optional[Sequence[int]] = None) -> np.ndarray:
    """Global variance: per-dimension variance of each utterance, averaged over utterances.

    .. math::
        v_d = \\frac{1}{N} \\sum_{n=1}^{N} \\frac{1}{T_n} \\sum_{t=1}^{T_n}
              (x^{(n)}_{t,d} - \\bar{x}^{(n)}_d)^2

    (biased variance, ``np.var``; every utterance weighs the same, as in Toda et al.
    2007 and sprocket's ``GV.estimate``).

    Parameters
    ----------
    x : ndarray (T, D) or (B, T, D), or list of ndarray (T_i, D)
        Each utterance needs at least 2 frames.
    lengths : sequence of int, shape (B,), optional
        Valid frames of each item of a padded (B, T, D) batch.

    Returns
    -------
    gv : ndarray, shape (D,)
    """
    utts = as_utterances(x, lengths, min_frames=2)
    return np.mean([np.var(u, axis=0) for u in utts], axis=0)


def modulation_power(x: ArrayOrList, n_fft: int = 256,
                     lengths: Optional[Sequence[int]] = None) -> Tuple[np.ndarray, int]:
    """Summed segment power spectra and frame count behind :func:`modulation_spectrum`.

    Useful to accumulate a modulation spectrum over many utterances in pieces:
    ``10 log10(sum(P) / sum(n))`` over pieces equals the MS of all of them.

    Returns
    -------
    power_sum : ndarray, shape (n_fft // 2 + 1, D)
        :math:`\\sum_s |X_s(k)|^2` over all segments s.
    n_frames : int
        Total number of valid frames (the sum of segment lengths).
    """
    n_fft = _check_n_fft(n_fft)
    utts = as_utterances(x, lengths, min_frames=1)
    total = np.zeros((n_fft // 2 + 1, utts[0].shape[1]))
    n = 0
    for u in utts:
        dev = u - u.mean(axis=0)
        for start in range(0, u.shape[0], n_fft):
            seg = dev[start:start + n_fft]
            spec = np.fft.rfft(seg, n=n_fft, axis=0)  # zero-pads a short last segment
            total += spec.real ** 2 + spec.imag ** 2
            n += seg.shape[0]
    return total, n


def modulation_spectrum(x: ArrayOrList, n_fft: int = 256,
                        lengths: Optional[Sequence[int]] = None) -> np.ndarray:
    """Modulation spectrum: log power spectrum of each dimension's trajectory, in dB.

    Each utterance's trajectory is made zero-mean per dimension (its own mean), then
    cut into consecutive non-overlapping segments of ``n_fft`` frames; the last,
    shorter segment (or a whole utterance shorter than ``n_fft``) is zero-padded to
    ``n_fft``. Powers are pooled over all segments of all utterances *before* the
    log, normalized by the number of real frames (Bartlett's method):

    .. math::
        \\mathrm{MS}_d(k) = 10 \\log_{10} \\frac{\\sum_s |X_{s,d}(k)|^2}{\\sum_s L_s},
        \\qquad X_{s,d}(k) = \\sum_{t=0}^{L_s-1} (x_{s,t,d} - \\bar{x}_d)
        e^{-2\\pi i k t / n_\\mathrm{fft}}

    with :math:`L_s \\le n_\\mathrm{fft}` the real frames of segment s, so a white
    trajectory of variance :math:`\\sigma^2` has MS :math:`\\approx 10\\log_{10}\\sigma^2`
    at every bin whatever the utterance lengths. Bin k is the modulation frequency
    :math:`k / (n_\\mathrm{fft} \\cdot \\text{frame period})` (0 to 100 Hz at 5 ms).
    Powers are floored at -200 dB. Takamichi et al. 2016 (IEEE/ACM TASLP 24(4)).

    Parameters
    ----------
    x : ndarray (T, D) or (B, T, D), or list of ndarray (T_i, D)
    n_fft : int
        Segment / FFT length in frames (256 frames = 1.28 s at 5 ms).
    lengths : sequence of int, shape (B,), optional
        Valid frames of each item of a padded (B, T, D) batch.

    Returns
    -------
    ms : ndarray, shape (n_fft // 2 + 1, D), dB
    """
    total, n = modulation_power(x, n_fft, lengths)
    return 10.0 * np.log10(np.maximum(total / n, _MS_FLOOR))


def modulation_frequencies(n_fft: int = 256, frame_period: float = 5.0) -> np.ndarray:
    """Modulation frequency in Hz of each MS bin, shape (n_fft // 2 + 1,)."""
    n_fft = _check_n_fft(n_fft)
    if not frame_period > 0:
        raise ValueError(f"frame_period must be > 0 ms, got {frame_period}")
    return np.arange(n_fft // 2 + 1) / (n_fft * frame_period / 1000.0)


def gv_distance(conv: ArrayOrList, target: ArrayOrList) -> float:
    """GV distance (GVD): mean over dims of the absolute log10 ratio of two GVs.

    .. math::
        \\mathrm{GVD} = \\frac{1}{D} \\sum_{d=1}^{D}
                        \\left| \\log_{10} \\frac{v^{conv}_d}{v^{target}_d} \\right|

    Each argument is either a **GV vector**, a 1-D ndarray of shape (D,) (e.g. from
    :func:`global_variance` or speaker statistics), or **utterances** in any form
    :func:`global_variance` accepts (2-D, 3-D, or a list), whose GV is computed first.
    0 means equal GVs; 1 means a factor of 10 per dimension on average.

    Returns
    -------
    float
    """
    gvs = []
    for name, a in (("conv", conv), ("target", target)):
        if isinstance(a, np.ndarray) and a.ndim == 1:
            g = a.astype(np.float64)
        else:
            g = global_variance(a)
        if not np.all(np.isfinite(g)) or np.any(g <= 0):
            raise ValueError(f"gv_distance: {name} GV must be finite and > 0 in every dim")
        gvs.append(g)
    if gvs[0].shape != gvs[1].shape:
        raise ValueError(f"gv_distance: conv GV has {gvs[0].shape[0]} dims, "
                         f"target GV has {gvs[1].shape[0]}")
    return float(np.mean(np.abs(np.log10(gvs[0] / gvs[1]))))


def ms_distance(conv: ArrayOrList, target: ArrayOrList, n_fft: int = 256,
                precomputed: Union[bool, str] = False,
                band: Optional[Tuple[float, float]] = None,
                frame_period: float = 5.0, include_dc: bool = False) -> float:
    """MS distance: RMS difference of two log modulation spectra, in dB.

    .. math::
        \\mathrm{MSD} = \\sqrt{\\frac{1}{|K| D} \\sum_{k \\in K} \\sum_{d=1}^{D}
                        (\\mathrm{MS}^{conv}_d(k) - \\mathrm{MS}^{target}_d(k))^2}

    over the bins K of the modulation-frequency ``band`` (default: all bins but DC).
    The DC bin (k = 0) is left out unless ``include_dc``: after mean removal it only
    holds the drift of segment means, and is exactly zero (the -200 dB floor) for an
    utterance that fits in one segment, which would swamp the distance.

    Parameters
    ----------
    conv, target : utterances (any form :func:`modulation_spectrum` accepts) or MS arrays
    n_fft : int
        FFT length for MS computed here; MS arrays must have n_fft // 2 + 1 rows.
    precomputed : bool or "target"
        False: both are utterances; True: both are MS arrays (n_fft//2+1, D) in dB;
        "target": only ``target`` is an MS array (e.g. a speaker's ``ms`` statistic).
    band : (low_hz, high_hz), optional
        Keep only bins with low_hz <= modulation frequency <= high_hz.
    frame_period : float
        Frame shift in ms (only used to place ``band``).
    include_dc : bool
        Keep bin 0 (see above).

    Returns
    -------
    float, dB
    """
    n_fft = _check_n_fft(n_fft)
    if precomputed not in (False, True, "target"):
        raise ValueError(f"ms_distance: precomputed must be False, True or 'target', "
                         f"got {precomputed!r}")
    is_ms = {"conv": precomputed is True, "target": precomputed in (True, "target")}
    spectra = []
    for name, a in (("conv", conv), ("target", target)):
        if is_ms[name]:
            m = np.asarray(a, dtype=np.float64)
            if m.ndim != 2 or m.shape[0] != n_fft // 2 + 1:
                raise ValueError(f"ms_distance: {name} MS must be ({n_fft // 2 + 1}, D), "
                                 f"got shape {m.shape}")
        else:
            m = modulation_spectrum(a, n_fft)
        spectra.append(m)
    if spectra[0].shape != spectra[1].shape:
        raise ValueError(f"ms_distance: conv MS {spectra[0].shape} != target MS "
                         f"{spectra[1].shape}")
    diff = spectra[0] - spectra[1]
    keep = np.ones(diff.shape[0], dtype=bool)
    keep[0] = include_dc
    if band is not None:
        lo, hi = band
        if not 0 <= lo <= hi:
            raise ValueError(f"ms_distance: band must be (low, high) with 0 <= low <= high, "
                             f"got {band}")
        f = modulation_frequencies(n_fft, frame_period)
        keep &= (f >= lo) & (f <= hi)
    if not keep.any():
        raise ValueError(f"ms_distance: no MS bin in band {band} Hz")
    diff = diff[keep]
    return float(np.sqrt(np.mean(diff ** 2)))


# ----------------------------------------------------------------------------- DTW / MCD
def dtw_path(x: np.ndarray, y: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Dynamic time warping on the Euclidean distance between frames.

    Steps (1, 1), (1, 0), (0, 1), all with weight 1 (librosa's default); the path runs
    from (0, 0) to (Tx - 1, Ty - 1). The recursion
    :math:`D_{i,j} = C_{i,j} + \\min(D_{i-1,j-1}, D_{i-1,j}, D_{i,j-1})` is evaluated
    one anti-diagonal (i + j = const) at a time, vectorized with numpy.

    Parameters
    ----------
    x : ndarray, shape (Tx, D)
    y : ndarray, shape (Ty, D)

    Returns
    -------
    ix, iy : ndarray of int, shape (L,)
        Aligned frame indices, non-decreasing, ``max(Tx, Ty) <= L <= Tx + Ty - 1``.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"dtw_path: need (Tx, D) and (Ty, D) arrays, got {x.shape}, {y.shape}")
    if x.shape[0] == 0 or y.shape[0] == 0:
        raise ValueError("dtw_path: empty sequence")
    from scipy.spatial.distance import cdist

    cost = cdist(x, y)  # (Tx, Ty)
    acc = dtw_accumulate(cost)
    return _backtrack(acc)


def dtw_accumulate(cost: np.ndarray) -> np.ndarray:
    """Accumulated DTW cost matrix (Tx, Ty) of a local cost matrix (see :func:`dtw_path`)."""
    tx, ty = cost.shape
    acc = np.full((tx, ty), np.inf)
    acc[0, 0] = cost[0, 0]
    for k in range(1, tx + ty - 1):
        i = np.arange(max(0, k - ty + 1), min(k, tx - 1) + 1)
        j = k - i
        best = np.full(i.shape, np.inf)
        m = (i > 0) & (j > 0)
        best[m] = acc[i[m] - 1, j[m] - 1]
        m = i > 0
        best[m] = np.minimum(best[m], acc[i[m] - 1, j[m]])
        m = j > 0
        best[m] = np.minimum(best[m], acc[i[m], j[m] - 1])
        acc[i, j] = cost[i, j] + best
    return acc


def _backtrack(acc: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    i, j = acc.shape[0] - 1, acc.shape[1] - 1
    ix, iy = [i], [j]
    while i > 0 or j > 0:
        if i == 0:
            j -= 1
        elif j == 0:
            i -= 1
        else:
            cands = (acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])
            step = int(np.argmin(cands))  # ties: prefer the diagonal
            if step == 0:
                i, j = i - 1, j - 1
            elif step == 1:
                i -= 1
            else:
                j -= 1
        ix.append(i)
        iy.append(j)
    return np.array(ix[::-1], dtype=np.int64), np.array(iy[::-1], dtype=np.int64)


def _mcd_columns(a: np.ndarray, dims: int, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"mel_cepstral_distortion: {name} must be (T, M+1) c0..cM, "
                         f"got shape {a.shape}")
    if a.shape[1] < dims + 1:
        raise ValueError(f"mel_cepstral_distortion: {name} has {a.shape[1]} columns "
                         f"(c0..c{a.shape[1] - 1}); dims={dims} needs c1..c{dims}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"mel_cepstral_distortion: {name} contains NaN or infinite values")
    return a[:, 1:dims + 1]


def _mask(mask: Optional[np.ndarray], n: int, name: str) -> np.ndarray:
    if mask is None:
        return np.arange(n)
    m = np.asarray(mask)
    if m.dtype != bool or m.shape != (n,):
        raise ValueError(f"mel_cepstral_distortion: {name} must be a bool array of shape "
                         f"({n},), got {m.dtype} {m.shape}")
    idx = np.flatnonzero(m)
    if idx.size == 0:
        raise ValueError(f"mel_cepstral_distortion: {name} selects no frame")
    return idx


def mel_cepstral_distortion(conv_mcep: np.ndarray, ref_mcep: np.ndarray, dims: int = 24,
                            conv_mask: Optional[np.ndarray] = None,
                            ref_mask: Optional[np.ndarray] = None, align: bool = True,
                            return_path: bool = False):
    """Mel-cepstral distortion in dB, after DTW alignment, over selected frames.

    .. math::
        \\mathrm{MCD} = \\frac{1}{L} \\sum_{l=1}^{L} \\frac{10}{\\ln 10}
            \\sqrt{2 \\sum_{d=1}^{\\mathrm{dims}} (c_{i_l,d} - c'_{j_l,d})^2}

    over the L pairs :math:`(i_l, j_l)` of the DTW path (Kubichek 1993; Kominek et al.
    2008). c0 (energy) is excluded.

    Parameters
    ----------
    conv_mcep, ref_mcep : ndarray, shapes (Tc, M+1) and (Tr, M+1)
        Mel-cepstra **including c0 at column 0**; columns 1..dims (c1..c_dims) are used.
    dims : int
        Number of cepstral coefficients compared (default 24: c1..c24).
    conv_mask, ref_mask : ndarray of bool, shapes (Tc,) and (Tr,), optional
        Frames to keep (e.g. non-silent ones, ``Features.nonsilent()``); default all.
    align : bool
        True: DTW (Euclidean on c1..c_dims of the kept frames). False: the kept frames
        must be equally many and are compared one to one.
    return_path : bool
        Also return the path as indices into the *original* (unmasked) frames, so F0
        or voicing can be compared on the same alignment.

    Returns
    -------
    mcd : float, dB
    (ix, iy) : tuple of ndarray of int, shape (L,), only when ``return_path``
    """
    if isinstance(dims, bool) or not isinstance(dims, (int, np.integer)) or dims < 1:
        raise ValueError(f"mel_cepstral_distortion: dims must be an integer >= 1, got {dims!r}")
    c = _mcd_columns(conv_mcep, dims, "conv_mcep")
    r = _mcd_columns(ref_mcep, dims, "ref_mcep")
    ci = _mask(conv_mask, c.shape[0], "conv_mask")
    ri = _mask(ref_mask, r.shape[0], "ref_mask")
    if align:
        px, py = dtw_path(c[ci], r[ri])
        ix, iy = ci[px], ri[py]
    else:
        if ci.size != ri.size:
            raise ValueError(f"mel_cepstral_distortion: align=False needs equally many "
                             f"frames, got {ci.size} and {ri.size}")
        ix, iy = ci, ri
    diff = c[ix] - r[iy]
    mcd = float(np.mean(_DB_FACTOR * np.sqrt(2.0 * np.sum(diff ** 2, axis=1))))
    return (mcd, (ix, iy)) if return_path else mcd


# ----------------------------------------------------------------------------- F0
def _f0_pair(f0_conv, f0_ref, fn: str) -> Tuple[np.ndarray, np.ndarray]:
    a = np.asarray(f0_conv, dtype=np.float64)
    b = np.asarray(f0_ref, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"{fn}: need two aligned 1-D f0 arrays of equal length, "
                         f"got shapes {a.shape} and {b.shape}")
    if a.size == 0:
        raise ValueError(f"{fn}: empty f0 arrays")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))) or np.any(a < 0) or np.any(b < 0):
        raise ValueError(f"{fn}: f0 must be finite and >= 0 (0 = unvoiced)")
    return a, b


def _voiced_in_both(f0_conv, f0_ref, fn: str) -> Tuple[np.ndarray, np.ndarray]:
    """The f0 values (Hz) of the frames voiced in both tracks, shapes (V,) and (V,)."""
    a, b = _f0_pair(f0_conv, f0_ref, fn)
    v = (a > 0) & (b > 0)
    return a[v], b[v]


def f0_rmse(f0_conv: np.ndarray, f0_ref: np.ndarray) -> float:
    """F0 root-mean-square error in Hz over frames voiced in both.

    .. math:: \\sqrt{\\frac{1}{|V|} \\sum_{t \\in V} (f_t - f'_t)^2},\\quad
              V = \\{t : f_t > 0, f'_t > 0\\}

    Parameters
    ----------
    f0_conv, f0_ref : ndarray, shape (T,)
        Aligned f0 tracks in Hz, 0 where unvoiced.

    Returns
    -------
    float, Hz; NaN when no frame is voiced in both.
    """
    a, b = _voiced_in_both(f0_conv, f0_ref, "f0_rmse")
    if a.size == 0:
        return math.nan
    return float(np.sqrt(np.mean((a - b) ** 2)))


def logf0_correlation(f0_conv: np.ndarray, f0_ref: np.ndarray) -> float:
    """Pearson correlation of log f0 over frames voiced in both.

    Parameters
    ----------
    f0_conv, f0_ref : ndarray, shape (T,)
        Aligned f0 tracks in Hz, 0 where unvoiced.

    Returns
    -------
    float in [-1, 1]; NaN with fewer than 2 such frames or a constant track.
    """
    a, b = _voiced_in_both(f0_conv, f0_ref, "logf0_correlation")
    if a.size < 2:
        return math.nan
    la, lb = np.log(a), np.log(b)
    la -= la.mean()
    lb -= lb.mean()
    den = math.sqrt(float(np.sum(la ** 2) * np.sum(lb ** 2)))
    if den == 0.0:
        return math.nan
    return float(np.sum(la * lb) / den)


def vuv_error(f0_conv: np.ndarray, f0_ref: np.ndarray) -> float:
    """Voiced/unvoiced error: fraction of frames whose voicing decisions differ.

    Parameters
    ----------
    f0_conv, f0_ref : ndarray, shape (T,)
        Aligned f0 tracks in Hz, 0 where unvoiced.

    Returns
    -------
    float in [0, 1]
    """
    a, b = _f0_pair(f0_conv, f0_ref, "vuv_error")
    return float(np.mean((a > 0) != (b > 0)))
