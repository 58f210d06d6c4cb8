"""Frequency warping (vawgan.warp) and its use as a training augmentation (train.warp)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vawgan.warp import WarpAugment, warp_matrices


def _peak(c: np.ndarray, n: int = 1024) -> float:
    """Frequency (rad) of the largest value of the log spectrum of cepstrum c."""
    full = np.zeros(n)
    full[0], full[1:len(c)], full[-(len(c) - 1):] = c[0], c[1:] / 2, c[1:][::-1] / 2
    return float(np.linspace(0, np.pi, n // 2 + 1)[np.argmax(np.fft.rfft(full).real)])


def test_warp_matrices_are_freqt():
    import pysptk

    rng = np.random.default_rng(0)
    A = warp_matrices([-0.07, 0.0, 0.04], order=39)
    assert A.shape == (3, 39, 39)
    assert np.allclose(A[1], np.eye(39))
    for _ in range(3):
        c = rng.normal(size=40) / np.arange(1, 41)
        for k, b in enumerate([-0.07, 0.0, 0.04]):
            # c0 does not reach c1..cM, so the (M, M) matrix is the whole transform
            assert np.allclose(A[k] @ c[1:], pysptk.freqt(c, 39, b)[1:], atol=1e-12)


def test_positive_beta_moves_a_formant_up():
    n = 1024
    w = np.linspace(0, np.pi, n // 2 + 1)
    c = np.fft.irfft(2.0 * np.exp(-0.5 * ((w - 1.0) / 0.08) ** 2))[:40]
    c[1:] *= 2
    A = warp_matrices([-0.05, 0.05], order=39)
    down, up = (np.concatenate([[c[0]], a @ c[1:]]) for a in A)
    assert _peak(c) == pytest.approx(1.0, abs=0.01)
    assert _peak(down) < 0.95 and _peak(up) > 1.05


def test_warp_matrices_check_arguments():
    with pytest.raises(ValueError, match="beta"):
        warp_matrices([1.0])
    with pytest.raises(ValueError, match="order"):
        warp_matrices([0.1], order=0)


def test_augment_warps_each_row_in_the_raw_domain():
    """Each row: de-normalized with its speaker's stats, warped by the drawn constant,
    normalized again; every frame of a window with the same constant."""
    rng = np.random.default_rng(1)
    stats = {s: (rng.normal(size=39), rng.uniform(0.2, 2.0, size=39)) for s in ("a", "b")}
    aug = WarpAugment(0.08, stats, ["a", "b"], "cpu", n_bins=5)
    x = torch.randn(6, 3 * 39)
    spk = torch.tensor([0, 1, 1, 0, 1, 0])
    y = aug(x, spk, torch.Generator().manual_seed(3))
    k = torch.randint(0, 5, (6,), generator=torch.Generator().manual_seed(3))
    betas = np.linspace(-0.08, 0.08, 5)
    assert len(set(k.tolist())) > 1
    for n in range(6):
        m, s = stats["ab"[spk[n]]]
        raw = x[n].double().numpy().reshape(3, 39) * s + m
        ref = (raw @ warp_matrices([betas[k[n]]])[0].T - m) / s
        assert np.allclose(y[n].double().numpy().reshape(3, 39), ref, atol=1e-4)
    # segments (N, L, D) keep their shape
    assert aug(x.reshape(6, 3, 39), spk, torch.Generator()).shape == (6, 3, 39)


def test_augment_checks_arguments():
    stats = {"a": (np.zeros(39), np.ones(39))}
    for bad in (0.0, 0.5, -0.1):
        with pytest.raises(ValueError, match="max_beta"):
            WarpAugment(bad, stats, ["a"], "cpu")
