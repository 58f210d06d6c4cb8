"""Post-processing of converted features: GV / MS postfilters and the f0 transform.

The postfilters act on one utterance's mel-cepstral body (c1..cM, shape (T, D)) and
pull a statistic of its trajectory toward a target speaker's statistic (from
:mod:`vawgan.stats`), with a strength ``alpha`` in [0, 1] (0 = identity);
:func:`postfilter_body` applies either to the non-silent frames, as the conversion does.

* :func:`gv_postfilter`: Toda, Black & Tokuda, IEEE TASLP 15(8), 2007; as in sprocket
  (``sprocket/model/GV.py``, ``GV.postfilter``).
* :func:`ms_postfilter`: Takamichi et al., "Postfilters to modify the modulation
  spectrum for statistical parametric speech synthesis", IEEE/ACM TASLP 24(4), 2016
  (the utterance-level, filtering form).
* :func:`convert_f0`: the usual log-Gaussian normalized f0 transform (Toda et al. 2007):
  :math:`\\log f_y = \\mu_y + \\frac{\\sigma_y}{\\sigma_x}(\\log f_x - \\mu_x)` on
  voiced frames; unvoiced frames stay 0.

Examples
--------
>>> import numpy as np
>>> from vawgan.metrics import global_variance
>>> from vawgan.postfilter import gv_postfilter
>>> x = np.random.default_rng(0).normal(size=(400, 2))
>>> y = gv_postfilter(x, target_gv=np.array([4.0, 9.0]))
>>> np.round(global_variance(y), 6)
array([4., 9.])
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .metrics import _check_n_fft, modulation_spectrum

#: postfilter kinds of :func:`postfilter_body` (and ``--postfilter``)
POSTFILTERS = ("none", "gv", "ms")
#: the first cepstral order a conversion's postfilter changes (c4..c39): on VCC2016 dev
#: the lowest orders keep most of their natural variance through the model but vary
#: most from sentence to sentence, so imposing the speaker's mean utterance variance on
#: them costs MCD: with the 0.1-era model c1..c39 -> c5..c39 saved 0.2 dB for a GV
#: distance 0.006 higher; with the shipped model (speaker-adversarial weight 10, which
#: leaves c1..c4 further below natural) c4..c39 keeps the waveform-level GVD of the dev
#: headline pairs within 0.05: 7.15 dB / 0.049 (from c3: 7.19 / 0.049; from c5, the same
#: configuration with the penalty on every item: 7.13 / 0.053); aimed through the vocoder
#: (the target's ``gv_resynth_ratio``) c4..c39 gave 7.10 / 0.044, c5..c39 0.01 dB less
#: for a GVD 0.002 higher, not worth the margin (docs/results.md)
DEFAULT_PF_FIRST = 4
#: variances below this are treated as zero (a constant dimension is left as is)
_VAR_FLOOR = 1e-12


def _check_body(x: np.ndarray, fn: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"{fn}: mcep_body must be (T, D) with T >= 2, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{fn}: mcep_body contains NaN or infinite values")
    return x


def _check_gv(gv, n_dims: int, fn: str) -> np.ndarray:
    """A target GV as float64 (n_dims,), finite and > 0; ValueError naming ``fn``."""
    gv = np.asarray(gv, dtype=np.float64)
    if gv.shape != (n_dims,):
        raise ValueError(f"{fn}: target_gv must have shape ({n_dims},), got {gv.shape}")
    if not np.all(np.isfinite(gv)) or np.any(gv <= 0):
        raise ValueError(f"{fn}: target_gv must be finite and > 0")
    return gv


def _check_alpha(alpha: float, fn: str) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) \
            or not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"{fn}: alpha must be a number in [0, 1], got {alpha!r}")
    return float(alpha)


def gv_postfilter(mcep_body: np.ndarray, target_gv: np.ndarray, alpha: float = 1.0,
                  mean: Optional[np.ndarray] = None) -> np.ndarray:
    """Scale each dimension's deviations so the utterance variance meets a target GV.

    With :math:`\\mu_d` the centre (the utterance mean, or ``mean``) and
    :math:`v_d` the utterance variance (``np.var``, around its own mean):

    .. math::
        y_{t,d} = \\mu_d + \\left(\\alpha \\sqrt{v^{target}_d / v_d} + 1 - \\alpha\\right)
                  (x_{t,d} - \\mu_d)

    i.e. sprocket's ``alpha * gvpf(x) + (1 - alpha) * x``: the standard deviation is
    interpolated linearly between the utterance's and the target's. With ``alpha=1``
    and the default centre the output's variance equals ``target_gv`` exactly
    (Toda et al. 2007). Dimensions with (near) zero variance are left unchanged.

    Parameters
    ----------
    mcep_body : ndarray, shape (T, D)
        One utterance's c1..cM (T >= 2).
    target_gv : ndarray, shape (D,)
        Target global variance (> 0), e.g. the target speaker's ``gv`` statistic.
    alpha : float in [0, 1]
        Strength; 0 returns the input unchanged.
    mean : ndarray, shape (D,), optional
        Centre of the scaling; default the utterance's own mean (which is then kept).

    Returns
    -------
    ndarray, shape (T, D)
    """
    fn = "gv_postfilter"
    x = _check_body(mcep_body, fn)
    alpha = _check_alpha(alpha, fn)
    gv = _check_gv(target_gv, x.shape[1], fn)
    if mean is None:
        mu = x.mean(axis=0)
    else:
        mu = np.asarray(mean, dtype=np.float64)
        if mu.shape != (x.shape[1],) or not np.all(np.isfinite(mu)):
            raise ValueError(f"{fn}: mean must be finite with shape ({x.shape[1]},), "
                             f"got {mu.shape}")
    if alpha == 0.0:
        return x.copy()
    return mu + _gv_scale(x.var(axis=0), gv, alpha) * (x - mu)


def _gv_scale(var: np.ndarray, gv: np.ndarray, alpha: float) -> np.ndarray:
    """Per-dim factor of :func:`gv_postfilter` from the utterance variance ``var``."""
    ratio = np.ones_like(var)
    ok = var > _VAR_FLOOR
    ratio[ok] = np.sqrt(gv[ok] / var[ok])
    return alpha * ratio + (1.0 - alpha)


#: rows per block of the in-place GV postfilter (bounded temporaries)
_BLOCK_ROWS = 1 << 16


def _gv_rows_inplace(out: np.ndarray, idx: np.ndarray, gv: np.ndarray, alpha: float,
                     k: int = 0) -> None:
    """:func:`gv_postfilter` of the rows ``idx`` and columns ``k:`` of ``out`` (``gv``
    of those columns), written into them, block by block (two passes over blocks for
    the mean and the variance: an hour of frames needs no whole-utterance temporary)."""
    fn = "gv_postfilter"
    gv = _check_gv(gv, out.shape[1] - k, fn)
    blocks = [idx[i: i + _BLOCK_ROWS] for i in range(0, len(idx), _BLOCK_ROWS)]
    total = np.zeros(out.shape[1] - k)
    for b in blocks:
        x = out[b, k:]
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{fn}: mcep_body contains NaN or infinite values")
        total += x.sum(axis=0)
    mu = total / len(idx)
    sq = np.zeros(out.shape[1] - k)
    for b in blocks:
        d = out[b, k:] - mu
        sq += np.einsum("ij,ij->j", d, d)
    scale = _gv_scale(sq / len(idx), gv, alpha)
    for b in blocks:
        out[b, k:] = mu + scale * (out[b, k:] - mu)


def auto_smooth_bins(n_frames: int, n_fft: int = 256, min_estimates: int = 4) -> int:
    """Width (odd, in MS bins) of the frequency smoothing used by :func:`ms_gain_db`.

    One utterance's modulation spectrum is a raw periodogram pooled over only
    :math:`m = T / n_\\mathrm{fft}` segments (about 2m degrees of freedom per bin), and
    for :math:`T < n_\\mathrm{fft}` neighbouring bins are not even independent (the
    resolution is :math:`n_\\mathrm{fft} / T` bins). The width averages about
    ``min_estimates`` independent estimates per bin:

    .. math:: w = \\mathrm{odd}\\left(\\lceil K / \\max(m, 1) \\rceil \\cdot
              \\max(n_\\mathrm{fft} / T, 1)\\right)

    (1, no smoothing, once the utterance has ``min_estimates`` segments or more).
    """
    m = n_frames / n_fft
    w = int(np.ceil(np.ceil(min_estimates / max(m, 1.0)) * max(n_fft / n_frames, 1.0) - 1e-9))
    w = max(w, 1)
    w = w if w % 2 else w + 1
    return min(w, 2 * (n_fft // 2) + 1)  # at most the whole spectrum


def _smooth_db(ms_db: np.ndarray, width: int) -> np.ndarray:
    """Moving average of the dB values over ``width`` bins, mirrored at 0 and Nyquist.

    In dB, not in linear power: the speaker statistic (``SpeakerStats.ms``) is a mean
    of per-utterance dB periodograms, i.e. a mean of logs, and the utterance side must
    be computed the same way. Averaging linear power instead raises a few-segment
    periodogram's level by up to 2.5 dB (the log of a chi-square variable with 2 degrees
    of freedom is 2.5 dB below the log of its mean), so the gain came out biased low.
    """
    if width <= 1:
        return ms_db
    h = width // 2
    mode = "reflect" if ms_db.shape[0] > h else "edge"  # reflect: real spectra are symmetric
    padded = np.pad(ms_db, ((h, h), (0, 0)), mode=mode)
    c = np.cumsum(np.vstack([np.zeros((1, ms_db.shape[1])), padded]), axis=0)
    return (c[width:] - c[:-width]) / width


def ms_gain_db(mcep_body: np.ndarray, target_ms: np.ndarray, alpha: float = 1.0,
               n_fft: int = 256, max_gain_db: Optional[float] = 30.0,
               smooth_bins: Optional[int] = None) -> np.ndarray:
    """Power gain in dB per MS bin that :func:`ms_postfilter` applies.

    .. math:: G_d(k) = \\mathrm{clip}\\left(\\alpha \\left(
              \\mathcal{S}[\\mathrm{MS}^{target}_d](k) - \\mathcal{S}[\\mathrm{MS}^{x}_d](k)
              \\right), \\pm G_{max}\\right)

    with :math:`\\mathrm{MS}^x` the utterance's own modulation spectrum
    (:func:`vawgan.metrics.modulation_spectrum`, same ``n_fft``) and
    :math:`\\mathcal{S}` a moving average of the dB values over ``smooth_bins`` bins
    (same on both sides, so a target equal to the utterance's MS gives G = 0 exactly;
    in dB because the speaker statistic is a mean of dB periodograms, see
    :func:`_smooth_db`).
    The DC bin of both spectra is replaced by bin 1 first: after mean removal it is
    degenerate (exactly zero for an utterance within one segment).

    Parameters
    ----------
    mcep_body, target_ms, alpha, n_fft, max_gain_db
        As in :func:`ms_postfilter`.
    smooth_bins : int, optional
        Odd smoothing width in bins; None chooses :func:`auto_smooth_bins` (T).

    Returns
    -------
    ndarray, shape (n_fft // 2 + 1, D), dB
    """
    fn = "ms_postfilter"
    x = _check_body(mcep_body, fn)
    alpha = _check_alpha(alpha, fn)
    n_fft = _check_n_fft(n_fft)
    ms_t = np.asarray(target_ms, dtype=np.float64)
    if ms_t.shape != (n_fft // 2 + 1, x.shape[1]):
        raise ValueError(f"{fn}: target_ms must have shape ({n_fft // 2 + 1}, {x.shape[1]}) "
                         f"for n_fft={n_fft}, got {ms_t.shape}")
    if not np.all(np.isfinite(ms_t)):
        raise ValueError(f"{fn}: target_ms contains NaN or infinite values")
    if max_gain_db is not None and not max_gain_db > 0:
        raise ValueError(f"{fn}: max_gain_db must be > 0 or None, got {max_gain_db}")
    if smooth_bins is None:
        smooth_bins = auto_smooth_bins(x.shape[0], n_fft)
    if isinstance(smooth_bins, bool) or not isinstance(smooth_bins, (int, np.integer)) \
            or smooth_bins < 1 or smooth_bins % 2 == 0:
        raise ValueError(f"{fn}: smooth_bins must be an odd integer >= 1, got {smooth_bins!r}")
    ms_x = modulation_spectrum(x, n_fft)
    # DC: after mean removal it is degenerate (0 for T <= n_fft); use bin 1's level
    ms_t, ms_x = ms_t.copy(), ms_x.copy()
    ms_t[0], ms_x[0] = ms_t[1], ms_x[1]
    gain = alpha * (_smooth_db(ms_t, smooth_bins) - _smooth_db(ms_x, smooth_bins))
    if max_gain_db is not None:
        gain = np.clip(gain, -max_gain_db, max_gain_db)
    return gain


def ms_postfilter(mcep_body: np.ndarray, target_ms: np.ndarray, alpha: float = 1.0,
                  n_fft: int = 256, max_gain_db: Optional[float] = 30.0,
                  smooth_bins: Optional[int] = None) -> np.ndarray:
    """Filter each dimension's trajectory so its modulation spectrum meets a target MS.

    Per dimension d, with :math:`\\bar{x}_d` the utterance mean:

    1. the gain :math:`G_d(k)` in dB on the ``n_fft`` grid (:func:`ms_gain_db`): the
       target MS minus the utterance's own MS, times ``alpha``, clipped to
       ``+-max_gain_db``. Both spectra are measured the same way
       (:func:`vawgan.metrics.modulation_spectrum`) and smoothed over frequency
       alike (``smooth_bins``, wider for short utterances whose own MS is a noisy
       periodogram: :func:`auto_smooth_bins`), so an utterance that already has the
       target MS gets :math:`G = 0`;
    2. the gain is interpolated linearly (in dB, over the normalized modulation
       frequency k / n_fft cycles per frame) onto the bins of an FFT of length
       :math:`N \\ge 2T` (zero-padded, so the filtering is a linear, not circular,
       convolution whatever T is relative to ``n_fft``);
    3. :math:`y_d = \\bar{x}_d + \\mathrm{IFFT}_N\\left(10^{G_d/20}\\,
       \\mathrm{FFT}_N(x_d - \\bar{x}_d)\\right)[0:T]`: the amplitude is scaled by the
       square root of the power ratio, the phase is kept (zero-phase filter); the
       filtered deviations are re-centred so the utterance mean is kept exactly.

    This is the utterance-level filtering form of Takamichi et al. 2016 with the
    converted-speech MS taken from the utterance itself; ``alpha`` interpolates the
    log MS: :math:`\\log s' = \\log s + \\alpha (\\log s^{target} - \\log s)`.

    Parameters
    ----------
    mcep_body : ndarray, shape (T, D)
        One utterance's c1..cM (T >= 2).
    target_ms : ndarray, shape (n_fft // 2 + 1, D)
        Target modulation spectrum in dB, e.g. the target speaker's ``ms`` statistic.
    alpha : float in [0, 1]
        Strength; 0 returns the input unchanged.
    n_fft : int
        The FFT length ``target_ms`` was computed with.
    max_gain_db : float or None
        Limit on the gain per bin (guards bins where the utterance has almost no
        power); None for no limit.
    smooth_bins : int, optional
        Odd width of the frequency smoothing; None = :func:`auto_smooth_bins` (T).

    Returns
    -------
    ndarray, shape (T, D)
    """
    x = _check_body(mcep_body, "ms_postfilter")
    gain_db = ms_gain_db(x, target_ms, alpha, n_fft, max_gain_db, smooth_bins)
    if not np.any(gain_db):
        return x.copy()
    t = x.shape[0]
    n = 1
    while n < 2 * t:
        n *= 2
    grid = np.arange(n_fft // 2 + 1) / n_fft  # cycles per frame
    bins = np.arange(n // 2 + 1) / n
    amp = np.stack([np.interp(bins, grid, gain_db[:, d]) for d in range(x.shape[1])], axis=1)
    amp = 10.0 ** (amp / 20.0)
    mu = x.mean(axis=0)
    spec = np.fft.rfft(x - mu, n=n, axis=0)
    y = np.fft.irfft(spec * amp, n=n, axis=0)[:t]
    return mu + (y - y.mean(axis=0))  # truncation to T frames can leave a small offset


def postfilter_body(body: np.ndarray, kind: str, natural: Optional[np.ndarray] = None,
                    alpha: float = 1.0, ms_fft: int = 256,
                    mask: Optional[np.ndarray] = None, inplace: bool = False,
                    first: int = 1) -> np.ndarray:
    """GV or MS postfilter of the frames of ``mask`` and the dims ``c{first}..cD``, the
    others returned unchanged.

    Parameters
    ----------
    body : ndarray, shape (T, D)
        A converted utterance's c1..cD.
    kind : {"none", "gv", "ms"}
        :func:`gv_postfilter` or :func:`ms_postfilter`; "none" returns ``body``.
    natural : ndarray, optional
        The target statistic: ``gv`` (D,) for "gv", ``ms`` (ms_fft // 2 + 1, D) for
        "ms" (unused for "none").
    alpha : float in [0, 1]
        Strength (1 = match the target fully); 0 returns ``body``.
    ms_fft : int
        Modulation-spectrum FFT length ``natural`` was computed with ("ms").
    mask : ndarray of bool, shape (T,), optional
        Frames the postfilter works on (the non-silent ones, over which the statistics
        are computed); all frames when None or when fewer than 2 are selected.
    inplace : bool
        Filter ``body`` itself (a C-contiguous float64 array the caller owns) and
        return it: no copy of a long utterance. The GV postfilter then runs block by
        block, its temporaries bounded whatever the length.
    first : int
        The first cepstral order filtered, 1..D (1: every dim; conversion uses
        :data:`DEFAULT_PF_FIRST`); the orders below keep their values. ``natural``
        still covers all D dims.

    Returns
    -------
    ndarray, shape (T, D)
        ``body`` itself for "none", ``alpha == 0`` or ``inplace``, else a new float64
        array.
    """
    if kind not in POSTFILTERS:
        raise ValueError(f"postfilter must be one of {POSTFILTERS}, got {kind!r}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"postfilter alpha must be in [0, 1], got {alpha}")
    check_pf_first(first, body.shape[-1])
    if kind == "none" or alpha == 0.0:
        return body
    if natural is None:
        raise ValueError(f"postfilter {kind}: no target statistic given")
    natural = np.asarray(natural, dtype=np.float64)
    rows = np.ones(len(body), bool) if mask is None or np.count_nonzero(mask) < 2 else mask
    if inplace and not (isinstance(body, np.ndarray) and body.dtype == np.float64
                        and body.flags.c_contiguous and body.flags.writeable):
        raise ValueError("postfilter_body: inplace needs a writeable C-contiguous float64 "
                         "array")
    out = body if inplace else np.array(body, dtype=np.float64, copy=True)
    k = first - 1
    if kind == "gv" and inplace:
        if out.ndim != 2 or len(out) < 2:
            raise ValueError(f"gv_postfilter: mcep_body must be (T, D) with T >= 2, got "
                             f"shape {out.shape}")
        _gv_rows_inplace(out, np.flatnonzero(rows), natural[k:], float(alpha), k)
    elif kind == "gv":
        out[rows, k:] = gv_postfilter(body[rows, k:], natural[k:], alpha)
    else:
        out[rows, k:] = ms_postfilter(body[rows, k:], natural[..., k:], alpha, ms_fft)
    return out


def check_pf_first(first: int, n_dims: int) -> int:
    """``first`` (the first cepstral order a postfilter changes) as an int in 1..n_dims;
    ValueError otherwise."""
    if isinstance(first, bool) or not isinstance(first, (int, np.integer)) \
            or not 1 <= first <= n_dims:
        raise ValueError(f"postfilter first order must be an integer in 1..{n_dims}, "
                         f"got {first!r}")
    return int(first)


# --------------------------------------------------------------------------- f0
def convert_f0(f0: np.ndarray, src_mean: float, src_std: float, tgt_mean: float,
               tgt_std: float) -> np.ndarray:
    """Log-Gaussian normalized f0 transform.

    .. math:: \\log f_y = \\mu_y + \\frac{\\sigma_y}{\\sigma_x} (\\log f_x - \\mu_x)

    Parameters
    ----------
    f0 : ndarray, shape (T,) (any shape)
        Source f0 in Hz, 0 where unvoiced.
    src_mean, src_std : float
        Mean and standard deviation of the source speaker's natural-log f0
        (``SpeakerStats.lf0_mean`` / ``lf0_std``).
    tgt_mean, tgt_std : float
        The same for the target speaker.

    Returns
    -------
    ndarray, same shape as ``f0``: converted f0 in Hz, 0 where ``f0`` is 0.
    """
    f0 = np.asarray(f0, dtype=np.float64)
    for name, v in (("src_mean", src_mean), ("src_std", src_std), ("tgt_mean", tgt_mean),
                    ("tgt_std", tgt_std)):
        if not math.isfinite(float(v)):
            raise ValueError(f"{name} must be finite, got {v}")
    if src_std <= 0 or tgt_std <= 0:
        raise ValueError(f"standard deviations must be > 0, got {src_std}, {tgt_std}")
    if not np.all(np.isfinite(f0)) or np.any(f0 < 0):
        raise ValueError("f0 must be finite and >= 0 (0 = unvoiced)")
    out = np.zeros_like(f0)
    v = f0 > 0
    out[v] = np.exp((np.log(f0[v]) - src_mean) * (tgt_std / src_std) + tgt_mean)
    return out
