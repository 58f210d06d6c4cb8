"""Tests of vawgan.metrics: GV, MS, their distances, DTW, MCD, F0 metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vawgan.metrics import (as_utterances, dtw_accumulate, dtw_path, f0_rmse, global_variance,
                            gv_distance, logf0_correlation, mel_cepstral_distortion,
                            modulation_frequencies, modulation_spectrum, ms_distance,
                            vuv_error)


def _utts(seed=0, n=4, d=3):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(int(rng.integers(50, 400)), d)) * np.arange(1, d + 1)
            for _ in range(n)]


def _smooth(x, width=9):
    k = np.ones(width) / width
    return np.stack([np.convolve(x[:, d], k, mode="same") for d in range(x.shape[1])], axis=1)


# ----------------------------------------------------------------------------- GV
def test_gv_hand_computed():
    a = np.array([[0.0, 1.0], [2.0, 1.0]])           # var: [1, 0]
    b = np.array([[0.0, 0.0], [0.0, 3.0], [0.0, 6.0]])  # var: [0, 6]
    np.testing.assert_allclose(global_variance(a), [1.0, 0.0])
    np.testing.assert_allclose(global_variance([a, b]), [0.5, 3.0])


def test_gv_order_independent_and_batched_equals_list():
    utts = _utts()
    gv = global_variance(utts)
    np.testing.assert_allclose(global_variance(utts[::-1]), gv, rtol=1e-12)
    lengths = [u.shape[0] for u in utts]
    batch = np.full((len(utts), max(lengths), 3), 123.0)  # padding must be ignored
    for b, u in enumerate(utts):
        batch[b, :len(u)] = u
    np.testing.assert_allclose(global_variance(batch, lengths=lengths), gv, rtol=1e-12)


def test_gv_smoothing_lowers_gv():
    x = np.random.default_rng(1).normal(size=(1000, 4))
    assert np.all(global_variance(_smooth(x)) < 0.5 * global_variance(x))


def test_gv_distance_values():
    x = np.random.default_rng(2).normal(size=(300, 3))
    assert gv_distance(x, x) == 0.0
    assert gv_distance(np.array([1.0, 10.0]), np.array([10.0, 10.0])) == pytest.approx(0.5)
    # utterances vs a GV vector: the utterances' GV is computed first
    g = global_variance(x)
    assert gv_distance(x, g * 100.0) == pytest.approx(2.0)
    assert gv_distance(3.0 * x, x) == pytest.approx(math.log10(9.0))


# ----------------------------------------------------------------------------- MS
def test_ms_white_noise_level():
    # pooled over many segments, a white trajectory of variance s^2 is flat near 10log10 s^2
    x = 3.0 * np.random.default_rng(3).normal(size=(256 * 200, 2))
    ms = modulation_spectrum(x, n_fft=256)
    assert ms.shape == (129, 2)
    assert abs(float(np.mean(ms)) - 10 * math.log10(9.0)) < 0.3


def test_ms_hand_computed_sinusoid():
    # x_t = cos(2 pi 4 t / 16), 16 frames, n_fft 16: |X(4)|^2 = (16/2)^2 = 64, /16 frames = 4
    t = np.arange(16)
    x = np.cos(2 * np.pi * 4 * t / 16)[:, None]
    ms = modulation_spectrum(x, n_fft=16)
    assert ms[4, 0] == pytest.approx(10 * math.log10(4.0))
    assert np.all(np.delete(ms[:, 0], 4) < -150)  # only the floor elsewhere


def test_ms_order_independent_batched_and_long_short():
    utts = _utts(seed=4)  # lengths 50..400: shorter and longer than n_fft=128
    ms = modulation_spectrum(utts, n_fft=128)
    np.testing.assert_allclose(modulation_spectrum(utts[::-1], n_fft=128), ms, atol=1e-10)
    lengths = np.array([u.shape[0] for u in utts])
    batch = np.zeros((len(utts), lengths.max(), 3))
    for b, u in enumerate(utts):
        batch[b, :len(u)] = u
        batch[b, len(u):] = -7.0
    np.testing.assert_allclose(modulation_spectrum(batch, n_fft=128, lengths=lengths), ms,
                               atol=1e-10)


def test_ms_smoothing_lowers_high_frequencies():
    x = np.random.default_rng(5).normal(size=(2000, 3))
    ms, ms_s = modulation_spectrum(x), modulation_spectrum(_smooth(x))
    f = modulation_frequencies(256, 5.0)
    high = f > 25.0
    assert np.all(ms_s[high].mean(axis=0) < ms[high].mean(axis=0) - 10.0)


def test_ms_distance():
    x = np.random.default_rng(6).normal(size=(600, 3))
    assert ms_distance(x, x) == 0.0
    ms = modulation_spectrum(x)
    assert ms_distance(ms, ms + 2.0, precomputed=True) == pytest.approx(2.0)
    assert ms_distance(x, ms - 1.5, precomputed="target") == pytest.approx(1.5)
    # scaling a trajectory by 10 adds 20 dB at every bin
    assert ms_distance(10 * x, x) == pytest.approx(20.0)
    # band restriction: a difference confined to bins above 50 Hz
    other = ms.copy()
    f = modulation_frequencies(256, 5.0)
    other[f > 50] += 4.0
    assert ms_distance(ms, other, precomputed=True, band=(0, 50)) == 0.0
    assert ms_distance(ms, other, precomputed=True, band=(51, 100)) == pytest.approx(4.0)
    assert 0 < ms_distance(x, _smooth(x))


# ----------------------------------------------------------------------------- DTW / MCD
def test_dtw_identity_and_stretch():
    x = np.random.default_rng(7).normal(size=(40, 2))
    ix, iy = dtw_path(x, x)
    np.testing.assert_array_equal(ix, np.arange(40))
    np.testing.assert_array_equal(iy, np.arange(40))
    y = np.repeat(x, 2, axis=0)  # every frame twice
    ix, iy = dtw_path(x, y)
    np.testing.assert_array_equal(ix, np.arange(80) // 2)
    np.testing.assert_array_equal(iy, np.arange(80))


def test_dtw_hand_computed_cost():
    cost = np.array([[0.0, 2.0, 5.0], [3.0, 0.0, 1.0]])
    acc = dtw_accumulate(cost)
    np.testing.assert_allclose(acc, [[0, 2, 7], [3, 0, 1]])


def test_dtw_matches_librosa_cost():
    librosa = pytest.importorskip("librosa")
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(60, 3)), rng.normal(size=(45, 3))
    c = cdist(x, y)
    d_lib, _ = librosa.sequence.dtw(C=c)
    ix, iy = dtw_path(x, y)
    assert c[ix, iy].sum() == pytest.approx(d_lib[-1, -1])
    assert np.all(np.diff(ix) >= 0) and np.all(np.diff(iy) >= 0)
    assert np.all(np.diff(ix) + np.diff(iy) >= 1)


def test_mcd_hand_computed():
    a = np.zeros((3, 26))
    b = np.zeros((3, 26))
    b[:, 0] = 5.0  # c0 is ignored
    assert mel_cepstral_distortion(a, b) == 0.0
    b[:, 1] = 0.1  # one coefficient off by 0.1: (10/ln10) * sqrt(2 * 0.01)
    want = 10 / math.log(10) * math.sqrt(2 * 0.01)
    assert mel_cepstral_distortion(a, b, align=False) == pytest.approx(want)
    b[:, 25] = 9.0  # c25 is outside the default c1..c24
    assert mel_cepstral_distortion(a, b, align=False) == pytest.approx(want)
    assert mel_cepstral_distortion(a, b, dims=25, align=False) > 10


def test_mcd_masks_and_path_indices():
    rng = np.random.default_rng(9)
    ref = rng.normal(size=(50, 25))
    conv = np.concatenate([np.full((10, 25), 50.0), ref], axis=0)  # 10 junk frames first
    mask = np.ones(60, bool)
    mask[:10] = False
    mcd, (ix, iy) = mel_cepstral_distortion(conv, ref, conv_mask=mask, return_path=True)
    assert mcd == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_array_equal(ix, np.arange(10, 60))
    np.testing.assert_array_equal(iy, np.arange(50))
    assert mel_cepstral_distortion(conv, ref) > 10  # unmasked, the junk frames count


# ----------------------------------------------------------------------------- F0
def test_f0_metrics_hand_computed():
    a = np.array([100.0, 110.0, 0.0, 120.0, 0.0])
    b = np.array([100.0, 100.0, 130.0, 0.0, 0.0])
    assert f0_rmse(a, b) == pytest.approx(math.sqrt((0 + 100) / 2))
    assert vuv_error(a, b) == pytest.approx(2 / 5)
    assert f0_rmse(a, a) == 0.0 and vuv_error(a, a) == 0.0
    assert logf0_correlation(a, a) == pytest.approx(1.0)
    assert math.isnan(f0_rmse(np.zeros(3), np.zeros(3)))
    c = np.array([100.0, 200.0, 150.0])
    assert logf0_correlation(c, 2 * c) == pytest.approx(1.0)
    assert logf0_correlation(c, 1e4 / c) == pytest.approx(-1.0)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("call", [
    lambda: global_variance(np.zeros(5)),
    lambda: global_variance(np.zeros((1, 3))),
    lambda: global_variance([np.zeros((5, 3)), np.zeros((5, 2))]),
    lambda: global_variance([]),
    lambda: global_variance(np.zeros((2, 5, 3)), lengths=[5]),
    lambda: global_variance(np.zeros((2, 5, 3)), lengths=[5, 9]),
    lambda: global_variance(np.full((5, 3), np.nan)),
    lambda: modulation_spectrum(np.zeros((10, 2)), n_fft=1),
    lambda: gv_distance(np.ones(3), np.ones(4)),
    lambda: gv_distance(np.zeros(3), np.ones(3)),
    lambda: ms_distance(np.zeros((5, 2)), np.zeros((5, 2)), n_fft=16, precomputed=True),
    lambda: ms_distance(np.ones((40, 2)), np.ones((40, 2)), precomputed="yes"),
    lambda: dtw_path(np.zeros((3, 2)), np.zeros((3, 3))),
    lambda: mel_cepstral_distortion(np.zeros((5, 10)), np.zeros((5, 10))),
    lambda: mel_cepstral_distortion(np.zeros((5, 25)), np.zeros((5, 25)),
                                    conv_mask=np.zeros(5, bool)),
    lambda: mel_cepstral_distortion(np.zeros((5, 25)), np.zeros((4, 25)), align=False),
    lambda: f0_rmse(np.zeros(3), np.zeros(4)),
    lambda: vuv_error(np.array([-1.0]), np.array([1.0])),
    lambda: as_utterances(np.zeros((2, 2)), lengths=[2]),
])
def test_argument_errors(call):
    with pytest.raises(ValueError):
        call()


def test_ms_distance_leaves_out_degenerate_dc():
    # an utterance within one segment has exactly zero DC power after mean removal
    x = np.random.default_rng(11).normal(size=(100, 2))
    ms = modulation_spectrum(x, n_fft=128)
    assert np.all(ms[0] < -150)
    flat = np.zeros_like(ms)
    assert ms_distance(ms, flat, n_fft=128, precomputed=True) < 10.0
    assert ms_distance(ms, flat, n_fft=128, precomputed=True, include_dc=True) > 15.0
