"""Fast, batched conversion between spectral envelopes and mel-cepstra.

pysptk's ``sp2mc`` / ``mc2sp`` run SPTK's recursive frequency warping (``freqt``)
once per frame, which costs more than WORLD's CheapTrick and D4C together. Both
conversions are *linear* in the log domain:

* sp -> mcep: ``log|X|^2`` -> real cepstrum (``irfft``, ``c[0] /= 2``) -> ``freqt(alpha)``
* mcep -> sp: ``freqt(-alpha)`` -> ``c[0] *= 2`` -> symmetric ``rfft`` -> ``exp``

so each is one matrix. ``freqt`` itself is a linear recursion (SPTK's ``freqt.c``): for
the input coefficients taken last to first, ``g <- M g + c_k e_0`` with a fixed
(order+1) x (order+1) matrix ``M``, so ``freqt(c) = A c`` with column ``k`` of ``A``
equal to ``M^k e_0`` (:func:`freqt_matrix`). We build the matrices once per
``(fft_size, order, alpha)`` in a few milliseconds of numpy (pysptk is not imported;
the tests check :func:`freqt_matrix` against ``pysptk.freqt``) and then convert a whole
utterance with one matrix product:

.. math::  \\mathbf{C} = \\log \\mathbf{S} \\, \\mathbf{W}_{s \\to c}, \\qquad
           \\mathbf{S} = \\exp(\\mathbf{C} \\, \\mathbf{W}_{c \\to s})

The tests check the result against pysptk frame by frame (relative error <= 1e-6)
and ``benchmarks/bench_mcep.py`` measures the speed-up.

Examples
--------
>>> import numpy as np
>>> from vawgan.mcep import sp2mc, mc2sp
>>> sp = np.abs(np.random.default_rng(0).normal(size=(100, 513))) + 1e-3
>>> mc = sp2mc(sp, order=39, alpha=0.41)      # (100, 40)
>>> mc2sp(mc, alpha=0.41, fft_size=1024).shape
(100, 513)
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def _check(order: int, alpha: float, fft_size: int) -> None:
    if order < 0:
        raise ValueError(f"order must be >= 0, got {order}")
    if not -1.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (-1, 1), got {alpha}")
    if fft_size < 2 or fft_size % 2:
        raise ValueError(f"fft_size must be an even number >= 2, got {fft_size}")


def freqt_matrix(n_in: int, order: int, alpha: float) -> np.ndarray:
    """Matrix ``A`` (order+1, n_in) with ``A @ c == pysptk.freqt(c, order, alpha)``.

    SPTK's recursion, for ``k = n_in-1 .. 0``, updates ``d = g`` then
    ``g[0] = c[k] + a d[0]``, ``g[1] = (1-a^2) d[0] + a d[1]``,
    ``g[j] = d[j-1] + a (d[j] - g[j-1])``: that is ``g <- M g + c[k] e_0``, so the
    result is ``sum_k M^k e_0 c[k]``.
    """
    if n_in < 1 or order < 0:
        raise ValueError(f"freqt_matrix: need n_in >= 1 and order >= 0, got {n_in}, {order}")
    m = order + 1
    a = float(alpha)
    step = np.zeros((m, m))
    step[0, 0] = a
    if m > 1:
        step[1, 0] = 1.0 - a * a
        step[1, 1] = a
    for j in range(2, m):
        step[j] = -a * step[j - 1]
        step[j, j - 1] += 1.0
        step[j, j] += a
    out = np.empty((m, n_in))
    col = np.zeros(m)
    col[0] = 1.0
    for k in range(n_in):
        out[:, k] = col
        col = step @ col
    return out


@lru_cache(maxsize=16)
def sp2mc_matrix(fft_size: int, order: int, alpha: float) -> np.ndarray:
    """Matrix ``W`` (fft_size//2+1, order+1) with ``mcep = log(sp) @ W`` (pysptk.sp2mc)."""
    _check(order, alpha, fft_size)
    n_bins = fft_size // 2 + 1
    c = np.fft.irfft(np.eye(n_bins), n=fft_size, axis=-1)  # (n_bins, fft_size)
    c[:, 0] /= 2.0
    w = c @ freqt_matrix(fft_size, order, alpha).T
    w.setflags(write=False)
    return w


@lru_cache(maxsize=16)
def mc2sp_matrix(fft_size: int, order: int, alpha: float) -> np.ndarray:
    """Matrix ``W`` (order+1, fft_size//2+1) with ``log(sp) = mcep @ W`` (pysptk.mc2sp)."""
    _check(order, alpha, fft_size)
    c = freqt_matrix(order + 1, fft_size // 2, -alpha).T  # (order+1, fft/2+1)
    c[:, 0] *= 2.0
    sym = np.zeros((order + 1, fft_size))
    half = fft_size // 2
    sym[:, : half + 1] = c
    sym[:, half + 1:] = c[:, 1:half][:, ::-1]
    w = np.fft.rfft(sym, axis=-1).real
    w.setflags(write=False)
    return w


def sp2mc(sp: np.ndarray, order: int, alpha: float) -> np.ndarray:
    """Power spectral envelope -> mel-cepstrum, same result as ``pysptk.sp2mc``.

    Parameters
    ----------
    sp : ndarray, shape (..., fft_size//2+1)
        Power spectral envelope (e.g. WORLD CheapTrick output), strictly positive.
    order : int
        Mel-cepstrum order M (returns M+1 coefficients c0..cM).
    alpha : float
        All-pass constant (frequency warping).

    Returns
    -------
    mc : ndarray, shape (..., order+1)
    """
    sp = np.asarray(sp, dtype=np.float64)
    if sp.shape[-1] < 2:
        raise ValueError(f"sp must have at least 2 frequency bins, got shape {sp.shape}")
    if np.any(sp <= 0):
        raise ValueError("sp must be strictly positive (it is a power spectrum)")
    fft_size = 2 * (sp.shape[-1] - 1)
    return np.log(sp) @ sp2mc_matrix(fft_size, int(order), float(alpha))


def mc2sp(mc: np.ndarray, alpha: float, fft_size: int) -> np.ndarray:
    """Mel-cepstrum -> power spectral envelope, same result as ``pysptk.mc2sp``.

    Parameters
    ----------
    mc : ndarray, shape (..., order+1)
    alpha : float
    fft_size : int

    Returns
    -------
    sp : ndarray, shape (..., fft_size//2+1)
    """
    mc = np.asarray(mc, dtype=np.float64)
    order = mc.shape[-1] - 1
    return np.exp(mc @ mc2sp_matrix(int(fft_size), order, float(alpha)))
