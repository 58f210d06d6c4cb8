"""Tests of vawgan.postfilter: GV and MS postfilters (checked with vawgan.metrics), convert_f0."""

from __future__ import annotations

import numpy as np
import pytest

from vawgan.metrics import global_variance, gv_distance, modulation_spectrum, ms_distance
from vawgan.postfilter import (auto_smooth_bins, convert_f0, gv_postfilter, ms_gain_db,
                               ms_postfilter, postfilter_body)


def _smooth(x, width=9):
    k = np.ones(width) / width
    return np.stack([np.convolve(x[:, d], k, mode="same") for d in range(x.shape[1])], axis=1)


@pytest.fixture(scope="module")
def target():
    """A 'natural' speaker: 20 unsmoothed utterances, 4 dims with different scales."""
    rng = np.random.default_rng(0)
    utts = [rng.normal(size=(int(rng.integers(300, 800)), 4)) * [1, 2, 0.5, 0.1] + 3.0
            for _ in range(20)]
    return global_variance(utts), modulation_spectrum(utts)


# ----------------------------------------------------------------------------- GV
def test_gv_postfilter_hits_target_and_keeps_mean(target):
    gv_t, _ = target
    x = _smooth(np.random.default_rng(1).normal(size=(500, 4)))
    y = gv_postfilter(x, gv_t)
    np.testing.assert_allclose(np.var(y, axis=0), gv_t, rtol=1e-10)
    np.testing.assert_allclose(y.mean(axis=0), x.mean(axis=0), atol=1e-12)
    assert gv_distance(y, gv_t) < 1e-9 < gv_distance(x, gv_t)


def test_gv_postfilter_alpha_interpolates_std(target):
    gv_t, _ = target
    x = _smooth(np.random.default_rng(2).normal(size=(400, 4)))
    np.testing.assert_array_equal(gv_postfilter(x, gv_t, alpha=0.0), x)
    half = gv_postfilter(x, gv_t, alpha=0.5)
    want_std = 0.5 * np.sqrt(gv_t) + 0.5 * np.std(x, axis=0)
    np.testing.assert_allclose(np.std(half, axis=0), want_std, rtol=1e-10)
    d = [gv_distance(gv_postfilter(x, gv_t, alpha=a), gv_t) for a in (0.0, 0.5, 1.0)]
    assert d[0] > d[1] > d[2]


def test_gv_postfilter_identity_when_matching():
    x = np.random.default_rng(3).normal(size=(300, 3))
    np.testing.assert_allclose(gv_postfilter(x, np.var(x, axis=0)), x, atol=1e-12)


def test_gv_postfilter_explicit_mean():
    x = np.random.default_rng(4).normal(size=(200, 2))
    mu = np.array([1.0, -1.0])
    y = gv_postfilter(x, 4 * np.var(x, axis=0), mean=mu)  # scale 2 around mu
    np.testing.assert_allclose(y, mu + 2 * (x - mu), atol=1e-12)


def test_gv_postfilter_constant_dim_untouched():
    x = np.random.default_rng(5).normal(size=(100, 2))
    x[:, 1] = 0.7
    y = gv_postfilter(x, np.array([2.0, 2.0]))
    assert np.all(y[:, 1] == 0.7) and np.all(np.isfinite(y))


# ----------------------------------------------------------------------------- MS
@pytest.mark.parametrize("t", [60, 200, 256, 700, 1500])
def test_ms_postfilter_moves_ms_and_gv_toward_target(target, t):
    gv_t, ms_t = target
    x = _smooth(np.random.default_rng(t).normal(size=(t, 4)))
    y = ms_postfilter(x, ms_t)
    assert y.shape == x.shape
    before = ms_distance(x, ms_t, precomputed="target")
    after = ms_distance(y, ms_t, precomputed="target")
    assert after < 0.5 * before
    assert gv_distance(y, gv_t) < gv_distance(x, gv_t)
    np.testing.assert_allclose(y.mean(axis=0), x.mean(axis=0), atol=1e-9)


def test_ms_postfilter_identity_when_matching_and_alpha_zero(target):
    _, ms_t = target
    for t in (100, 600):
        x = np.random.default_rng(t).normal(size=(t, 4))
        np.testing.assert_allclose(ms_postfilter(x, modulation_spectrum(x)), x, atol=1e-10)
        np.testing.assert_array_equal(ms_postfilter(x, ms_t, alpha=0.0), x)


def test_ms_postfilter_alpha_is_partial(target):
    _, ms_t = target
    x = _smooth(np.random.default_rng(6).normal(size=(900, 4)))
    d = [ms_distance(ms_postfilter(x, ms_t, alpha=a), ms_t, precomputed="target")
         for a in (0.0, 0.5, 1.0)]
    assert d[0] > d[1] > d[2]


def test_ms_postfilter_uniform_gain_is_a_scale():
    # a target 6.02 dB above the utterance's own MS at every bin doubles the deviations
    x = np.random.default_rng(7).normal(size=(300, 2)) + 5.0
    target_ms = modulation_spectrum(x) + 20 * np.log10(2.0)
    y = ms_postfilter(x, target_ms)
    mu = x.mean(axis=0)
    np.testing.assert_allclose(y, mu + 2 * (x - mu), atol=1e-9)


def test_ms_gain_and_smoothing_width():
    assert auto_smooth_bins(5000, 256) == 1
    assert auto_smooth_bins(700, 256) == 3
    assert auto_smooth_bins(100, 256) == 11
    assert auto_smooth_bins(2, 256) == 257  # capped at the whole spectrum
    x = np.random.default_rng(8).normal(size=(50, 2))
    g = ms_gain_db(x, modulation_spectrum(x) + 100.0, max_gain_db=30.0)
    assert np.all(g == 30.0)


@pytest.mark.parametrize("call", [
    lambda: gv_postfilter(np.zeros(10), np.ones(1)),
    lambda: gv_postfilter(np.zeros((1, 3)), np.ones(3)),
    lambda: gv_postfilter(np.zeros((10, 3)), np.ones(4)),
    lambda: gv_postfilter(np.zeros((10, 3)), np.array([1.0, 0.0, 1.0])),
    lambda: gv_postfilter(np.zeros((10, 3)), np.ones(3), alpha=1.5),
    lambda: gv_postfilter(np.zeros((10, 3)), np.ones(3), mean=np.zeros(2)),
    lambda: gv_postfilter(np.full((10, 3), np.nan), np.ones(3)),
    lambda: ms_postfilter(np.zeros((10, 3)), np.zeros((129, 2))),
    lambda: ms_postfilter(np.zeros((10, 3)), np.zeros((65, 3))),
    lambda: ms_postfilter(np.zeros((10, 3)), np.zeros((129, 3)), alpha=-0.1),
    lambda: ms_postfilter(np.zeros((10, 3)), np.zeros((129, 3)), smooth_bins=4),
    lambda: ms_postfilter(np.zeros((10, 3)), np.zeros((129, 3)), max_gain_db=0.0),
])
def test_argument_errors(call):
    with pytest.raises(ValueError):
        call()


def test_postfilter_body_masked_frames():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 3))
    mask = np.arange(300) >= 100
    gv = np.array([4.0, 9.0, 1.0])
    y = postfilter_body(x, "gv", gv, mask=mask)
    np.testing.assert_array_equal(y[~mask], x[~mask])  # silence left as it is
    np.testing.assert_allclose(global_variance(y[mask]), gv, rtol=1e-10)
    assert postfilter_body(x, "none") is x and postfilter_body(x, "gv", gv, alpha=0.0) is x
    with pytest.raises(ValueError, match="one of"):
        postfilter_body(x, "wiener", gv)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        postfilter_body(x, "gv", gv, alpha=1.5)
    with pytest.raises(ValueError, match="no target statistic"):
        postfilter_body(x, "ms")


def test_convert_f0():
    rng = np.random.default_rng(1)
    lf0 = rng.normal(np.log(120.0), 0.2, size=2000)
    f0 = np.exp(lf0)
    f0[rng.random(2000) < 0.3] = 0.0
    v = f0 > 0
    mu, sd = np.log(f0[v]).mean(), np.log(f0[v]).std()
    out = convert_f0(f0, mu, sd, np.log(230.0), 0.1)
    assert out.shape == f0.shape
    np.testing.assert_array_equal(out == 0, f0 == 0)
    np.testing.assert_allclose(np.log(out[v]).mean(), np.log(230.0), atol=1e-12)
    np.testing.assert_allclose(np.log(out[v]).std(), 0.1, rtol=1e-12)
    assert np.all(np.diff(out[v][np.argsort(f0[v])]) >= 0)  # order is kept
    np.testing.assert_allclose(convert_f0(f0, 5.0, 0.3, 5.0, 0.3), f0, rtol=1e-14)


def test_convert_f0_checks():
    f0 = np.array([0.0, 100.0])
    for bad in ([-1.0, 100.0], [np.inf, 100.0]):
        with pytest.raises(ValueError, match="f0 must be"):
            convert_f0(np.array(bad), 5.0, 0.2, 5.0, 0.2)
    with pytest.raises(ValueError, match="> 0"):
        convert_f0(f0, 5.0, 0.0, 5.0, 0.2)
    with pytest.raises(ValueError, match="finite"):
        convert_f0(f0, np.nan, 0.2, 5.0, 0.2)


def _ar_features(rng, n_frames, n_dims=4):
    """One utterance of an AR(1) 'natural' trajectory as Features (all frames speech)."""
    from vawgan.features import Features

    e = rng.normal(size=(n_frames, n_dims))
    x = np.zeros_like(e)
    for t in range(1, n_frames):
        x[t] = 0.8 * x[t - 1] + e[t]
    mcep = np.concatenate([rng.normal(size=(n_frames, 1)), x * [1.0, 0.5, 0.2, 0.1]], axis=1)
    f0 = 120.0 * np.exp(0.1 * rng.normal(size=n_frames))
    return Features(f0=f0, mcep=mcep, coded_ap=np.zeros((n_frames, 1)),
                    power_db=np.full(n_frames, 60.0), fs=16000, frame_period=5.0, alpha=0.42,
                    fft_size=1024)


def test_ms_gain_is_unbiased_against_the_stored_speaker_statistic():
    """Lesson 9: the speaker MS that the code stores (compute_speaker_stats: a mean of
    per-utterance dB periodograms) against held-out utterances of the *same* process
    must give a gain of ~0 dB on average (-0.03 dB here), not the +0.6 dB that
    comparing it with a power-smoothed utterance MS gave; GV is then left about as it
    is."""
    from vawgan.stats import compute_speaker_stats

    rng = np.random.default_rng(5)
    train = [_ar_features(rng, int(rng.integers(400, 800))) for _ in range(40)]
    st = compute_speaker_stats(train, ms_fft=256)
    gains, ratios = [], []
    for _ in range(20):
        x = _ar_features(rng, int(rng.integers(400, 800))).body
        gains.append(ms_gain_db(x, st.ms, n_fft=256).mean())
        ratios.append(global_variance(ms_postfilter(x, st.ms, n_fft=256)) / global_variance(x))
    assert abs(np.mean(gains)) < 0.25
    assert np.all(np.abs(np.log10(np.mean(ratios, axis=0))) < 0.05)


def test_postfilter_body_inplace_blocks_match_the_copy(monkeypatch):
    """The in-place GV path (long conversions: no whole-utterance copies, blocks of rows)
    gives the copying path's result, masked frames untouched."""
    import vawgan.postfilter as pf

    rng = np.random.default_rng(4)
    x = rng.normal(size=(1000, 5)) * np.array([1.0, 2.0, 0.5, 3.0, 1e-9])
    mask = rng.random(1000) > 0.3
    gv = np.array([4.0, 1.0, 2.0, 0.5, 1.0])
    want = postfilter_body(x, "gv", gv, alpha=0.7, mask=mask)
    monkeypatch.setattr(pf, "_BLOCK_ROWS", 97)  # several blocks, a ragged last one
    y = x.copy()
    got = postfilter_body(y, "gv", gv, alpha=0.7, mask=mask, inplace=True)
    assert got is y
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(got[~mask], x[~mask])
    # the MS postfilter in place too; a view or a float32 array is refused
    ms_want = postfilter_body(x[:, :4], "ms", np.zeros((129, 4)), mask=mask)
    z = np.ascontiguousarray(x[:, :4])
    np.testing.assert_allclose(postfilter_body(z, "ms", np.zeros((129, 4)), mask=mask,
                                               inplace=True), ms_want, rtol=1e-12)
    with pytest.raises(ValueError, match="inplace needs"):
        postfilter_body(x[:, :4], "gv", gv[:4], inplace=True)
    with pytest.raises(ValueError, match="NaN"):
        bad = x.copy()
        bad[5, 1] = np.nan
        postfilter_body(bad, "gv", gv, inplace=True)


@pytest.mark.parametrize("kind", ["gv", "ms"])
def test_postfilter_body_from_a_first_order(kind, monkeypatch):
    """``first=K`` leaves c1..c(K-1) exactly as they were and filters cK..cD as the
    postfilter of those dims alone would (copying and in-place paths alike)."""
    import vawgan.postfilter as pf

    rng = np.random.default_rng(5)
    x = rng.normal(size=(600, 6)) * np.array([3.0, 2.0, 1.0, 0.5, 0.3, 0.2])
    mask = rng.random(600) > 0.2
    natural = (np.array([4.0, 1.0, 2.0, 0.5, 1.0, 0.1]) if kind == "gv"
               else rng.normal(size=(129, 6)))
    k = 3
    got = postfilter_body(x, kind, natural, alpha=0.8, mask=mask, first=k)
    np.testing.assert_array_equal(got[:, :k - 1], x[:, :k - 1])
    want = postfilter_body(np.ascontiguousarray(x[:, k - 1:]), kind, natural[..., k - 1:],
                           alpha=0.8, mask=mask)
    np.testing.assert_allclose(got[:, k - 1:], want, rtol=1e-12, atol=1e-12)
    assert not np.allclose(got[mask][:, k - 1:], x[mask][:, k - 1:])  # it did filter
    # first=1 is the whole-body postfilter
    np.testing.assert_array_equal(postfilter_body(x, kind, natural, 0.8, mask=mask, first=1),
                                  postfilter_body(x, kind, natural, 0.8, mask=mask))
    if kind == "gv":
        monkeypatch.setattr(pf, "_BLOCK_ROWS", 53)
        y = x.copy()
        postfilter_body(y, "gv", natural, alpha=0.8, mask=mask, inplace=True, first=k)
        np.testing.assert_allclose(y, got, rtol=1e-12, atol=1e-12)
    for bad in (0, 7, 2.5, True):
        with pytest.raises(ValueError, match="first order"):
            postfilter_body(x, kind, natural, first=bad)
