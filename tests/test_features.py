"""Tests of the foundation: vawgan.mcep, vawgan.features, vawgan.audio.

Real speech is the ARCTIC utterance shipped inside pysptk's wheel; everything else is
generated here, so no corpus is needed.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vawgan.audio import ClippingWarning, load_audio, read_audio
from vawgan.config import _ALPHA_TABLE, FeatureConfig
from vawgan.errors import AudioError, FeatureError
from vawgan.features import (Features, analyze, analyze_file, check_compatible, load_features,
                             save_features, synthesize)
from vawgan.mcep import mc2sp, sp2mc

DIO = FeatureConfig(f0_method="dio")  # fast f0; the rest of the pipeline is the same


def arctic_path() -> str:
    pysptk = pytest.importorskip("pysptk")
    return pysptk.util.example_audio_file()


@pytest.fixture(scope="module")
def arctic_sp():
    """(801, 513) CheapTrick envelopes of real speech, as the pipeline computes them."""
    import pyworld
    import soundfile as sf

    x, fs = sf.read(arctic_path(), dtype="float64")
    f0, t = pyworld.harvest(x, fs, frame_period=5.0)
    return np.maximum(pyworld.cheaptrick(x, f0, t, fs, fft_size=1024), 1e-16)


def voice(seconds=0.5, f0=150.0, fs=16000, amp=0.3, noise=0.003, seed=0):
    t = np.arange(int(seconds * fs)) / fs
    f = f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))
    ph = 2 * np.pi * np.cumsum(f) / fs
    n_harm = max(1, int(0.45 * fs / (1.1 * f0)))
    x = sum(amp / k * np.sin(k * ph) for k in range(1, n_harm + 1))
    return x + noise * np.random.default_rng(seed).normal(size=t.size)


def mcd_db(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Frame-wise mel-cepstral distortion (dB) over c1..cM."""
    return 10.0 / np.log(10.0) * np.sqrt(2.0 * np.sum((a - b) ** 2, axis=1))


# --------------------------------------------------------------------------- fast mcep
def test_sp2mc_equals_pysptk_on_real_speech(arctic_sp):
    import pysptk

    ref = np.stack([pysptk.sp2mc(s, 39, 0.41) for s in arctic_sp])
    np.testing.assert_allclose(sp2mc(arctic_sp, 39, 0.41), ref, rtol=1e-6, atol=0)


def test_mc2sp_equals_pysptk_on_real_speech(arctic_sp):
    import pysptk

    mc = np.stack([pysptk.sp2mc(s, 39, 0.41) for s in arctic_sp[::4]])
    ref = np.stack([pysptk.mc2sp(m, 0.41, 1024) for m in mc])
    np.testing.assert_allclose(mc2sp(mc, 0.41, 1024), ref, rtol=1e-6, atol=0)


@pytest.mark.parametrize("fs", sorted(_ALPHA_TABLE))
def test_alpha_table_matches_pysptk(fs):
    import pysptk

    assert FeatureConfig(fs=fs).resolved_alpha() == pytest.approx(pysptk.util.mcepalpha(fs), abs=1e-9)


def test_mcep_argument_checks():
    with pytest.raises(ValueError, match="strictly positive"):
        sp2mc(np.zeros((2, 513)), 39, 0.41)
    with pytest.raises(ValueError, match="alpha"):
        sp2mc(np.ones((2, 513)), 39, 1.2)
    with pytest.raises(ValueError, match="fft_size"):
        mc2sp(np.zeros((2, 40)), 0.41, 1023)


@pytest.mark.parametrize("n_in, order, alpha", [(1024, 39, 0.41), (40, 512, -0.41),
                                                 (2048, 24, 0.554), (7, 3, -0.2), (1, 5, 0.1),
                                                 (3, 0, 0.3), (16, 16, 0.0)])
def test_freqt_matrix_equals_pysptk_freqt(n_in, order, alpha):
    pysptk = pytest.importorskip("pysptk")
    from vawgan.mcep import freqt_matrix

    a = freqt_matrix(n_in, order, alpha)
    assert a.shape == (order + 1, n_in)
    rng = np.random.default_rng(n_in + order)
    for c in rng.normal(size=(3, n_in)) / (1.0 + np.arange(n_in)):
        ref = pysptk.freqt(np.ascontiguousarray(c), order, alpha)
        np.testing.assert_allclose(a @ c, ref, rtol=1e-9, atol=1e-12 * np.max(np.abs(ref)))


@pytest.mark.parametrize("fft_size, order, alpha", [(1024, 39, 0.41), (2048, 24, 0.544)])
def test_mcep_matrices_equal_pysptk_on_the_identity(fft_size, order, alpha):
    """Every column of the conversion matrices against pysptk's per-frame functions."""
    pysptk = pytest.importorskip("pysptk")
    from vawgan.mcep import mc2sp_matrix, sp2mc_matrix

    n_bins = fft_size // 2 + 1
    rows = np.arange(0, n_bins, 37)
    ref = np.stack([pysptk.sp2mc(np.exp(np.eye(n_bins)[i]), order, alpha) for i in rows])
    np.testing.assert_allclose(sp2mc_matrix(fft_size, order, alpha)[rows], ref, atol=1e-12)
    ref = np.stack([np.log(pysptk.mc2sp(np.eye(order + 1)[i], alpha, fft_size))
                    for i in range(order + 1)])
    np.testing.assert_allclose(mc2sp_matrix(fft_size, order, alpha), ref, atol=1e-9)


def test_mcep_does_not_import_pysptk():
    import subprocess
    import sys

    code = ("import sys, numpy as np; from vawgan.mcep import sp2mc, mc2sp; "
            "mc2sp(sp2mc(np.ones((2, 513)), 39, 0.41), 0.41, 1024); "
            "print('pysptk' in sys.modules, 'pkg_resources' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2 ** 31 - 1), order=st.integers(4, 39),
       alpha=st.sampled_from([0.0, 0.31, 0.41, 0.554]))
def test_mc2sp_then_sp2mc_is_identity(seed, order, alpha):
    rng = np.random.default_rng(seed)
    mc = rng.normal(size=(5, order + 1)) / (1.0 + np.arange(order + 1)) ** 1.5  # smooth envelopes
    np.testing.assert_allclose(sp2mc(mc2sp(mc, alpha, 1024), order, alpha), mc, atol=1e-9)


# --------------------------------------------------------------------------- analysis / synthesis
def test_analysis_synthesis_round_trip_on_real_speech():
    feats, fs_orig = analyze_file(arctic_path(), DIO)
    assert fs_orig == 16000 and feats.mcep.shape == (feats.n_frames, 40)
    y = synthesize(feats)
    assert np.all(np.isfinite(y)) and abs(len(y) - 64000) <= 80
    again = analyze(y, 16000, DIO)
    n = min(feats.n_frames, again.n_frames)
    ns = feats.nonsilent(DIO.silence_db)[:n]
    mcd = mcd_db(feats.body[:n][ns], again.body[:n][ns]).mean()
    # control: the same utterance against itself 100 ms later; re-analysis must be far closer
    ctrl = mcd_db(feats.body[20:n][ns[20:]], feats.body[: n - 20][ns[20:]]).mean()
    assert mcd < 4.0 and mcd < 0.5 * ctrl
    v = feats.vuv[:n] & again.vuv[:n]
    assert np.mean(feats.vuv[:n] == again.vuv[:n]) > 0.9
    assert np.median(np.abs(again.f0[:n][v] / feats.f0[:n][v] - 1)) < 0.02


def test_synthesize_replacements_and_checks():
    feats = analyze(voice(), 16000, DIO)
    y1 = synthesize(feats, f0=feats.f0 * 2)
    assert len(y1) == len(synthesize(feats))
    with pytest.raises(ValueError, match="frames"):
        synthesize(feats, f0=feats.f0[:-1])
    with pytest.raises(ValueError, match="resample first"):
        analyze(voice(), 8000, DIO)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(f0=st.floats(80, 400), seconds=st.floats(0.12, 0.5), amp=st.floats(0.01, 0.9),
       noise=st.floats(0.0, 0.05), seed=st.integers(0, 1000))
def test_feature_round_trip_on_random_signals(tmp_path, f0, seconds, amp, noise, seed):
    x = voice(seconds, f0, amp=amp, noise=noise, seed=seed)
    x = x / max(1.0, 1.01 * np.max(np.abs(x)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClippingWarning)
        feats = analyze(x, 16000, DIO)
    hop = 16000 * DIO.frame_period / 1000
    assert feats.n_frames == int(len(x) / hop) + 1
    for a in (feats.f0, feats.mcep, feats.coded_ap, feats.power_db):
        assert np.all(np.isfinite(a))
    v = feats.f0 > 0
    assert np.all((feats.f0[v] >= DIO.f0_floor * 0.9) & (feats.f0[v] <= DIO.f0_ceil * 1.1))
    path = tmp_path / f"{seed}.npz"
    save_features(path, feats, speaker="S")
    back = load_features(path)
    for k in ("f0", "mcep", "coded_ap", "power_db"):
        np.testing.assert_array_equal(getattr(back, k), getattr(feats, k))
    assert (back.fs, back.alpha, back.fft_size) == (feats.fs, feats.alpha, feats.fft_size)
    y = synthesize(back)
    assert np.all(np.isfinite(y)) and abs(len(y) - len(x)) <= hop


@pytest.mark.parametrize("fs", [22050, 24000, 44100, 48000])
def test_other_working_rates(fs):
    cfg = FeatureConfig(fs=fs, f0_method="dio")
    feats = analyze(voice(0.3, fs=fs), fs, cfg)
    assert feats.fft_size == (1024 if fs <= 24000 else 2048)
    assert feats.alpha == _ALPHA_TABLE[fs] and feats.mcep.shape[1] == 40
    assert np.median(feats.f0[feats.vuv]) == pytest.approx(150, rel=0.05)
    y = synthesize(feats)
    assert np.all(np.isfinite(y)) and abs(len(y) - 0.3 * fs) <= fs * 0.005


# --------------------------------------------------------------------------- audio inputs
@pytest.mark.parametrize("subtype, channels, rate", [
    ("PCM_U8", 1, 16000), ("PCM_24", 1, 16000), ("FLOAT", 1, 16000), ("PCM_16", 2, 16000),
    ("PCM_16", 1, 8000), ("PCM_16", 1, 48000), ("PCM_32", 1, 22050),
])
def test_accepted_audio_formats(tmp_path, subtype, channels, rate):
    import soundfile as sf

    x = voice(0.4, fs=rate)
    data = np.stack([x, 0.5 * x], axis=1) if channels == 2 else x
    p = tmp_path / f"in_{subtype}_{channels}_{rate}.wav"
    sf.write(p, data, rate, subtype=subtype)
    feats, fs_orig = analyze_file(p, DIO)
    assert fs_orig == rate and feats.fs == 16000
    assert feats.n_frames == pytest.approx(0.4 * 1000 / 5, abs=2)
    assert np.median(feats.f0[feats.vuv]) == pytest.approx(150, rel=0.05)


def test_flac_input(tmp_path):
    import soundfile as sf

    p = tmp_path / "x.flac"
    sf.write(p, voice(), 16000)
    x, fs = read_audio(p)
    assert fs == 16000 and x.ndim == 1 and np.max(np.abs(x)) <= 1


def test_clipped_input_works_and_warns(tmp_path):
    import soundfile as sf

    p = tmp_path / "clipped.wav"
    sf.write(p, np.clip(4 * voice(), -1, 1), 16000)
    with pytest.warns(ClippingWarning, match="clipped.wav"):
        feats, _ = analyze_file(p, DIO)
    assert feats.n_frames > 50


def _write(tmp_path, name, data, rate=16000, subtype="PCM_16"):
    import soundfile as sf

    p = tmp_path / name
    sf.write(p, data, rate, subtype=subtype)
    return p


def _raw(tmp_path, name, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("make, message", [
    (lambda d: _raw(d, "text.wav", b"hello, I am not a wav file"), "not a readable audio file"),
    (lambda d: _raw(d, "empty.wav", b""), "empty file"),
    (lambda d: _write(d, "zero.wav", np.zeros(0)), "zero-length"),
    (lambda d: _write(d, "silence.wav", np.zeros(16000)), "silent"),
    (lambda d: _write(d, "short.wav", voice(0.02)), "too short"),
    (lambda d: _write(d, "nan.wav", np.where(np.arange(8000) == 100, np.nan, voice(0.5)),
                      subtype="FLOAT"), "NaN or infinite"),
    (lambda d: _write(d, "inf.wav", np.where(np.arange(8000) == 7, np.inf, voice(0.5)),
                      subtype="FLOAT"), "NaN or infinite"),
    (lambda d: d, "is a directory"),
    (lambda d: d / "missing.wav", "no such file"),
])
def test_bad_inputs_raise_audio_error_naming_the_file(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(AudioError, match=message) as e:
        analyze_file(path, DIO)
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    assert e.value.path == str(path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file(tmp_path):
    p = _write(tmp_path, "locked.wav", voice())
    p.chmod(0)
    try:
        with pytest.raises(AudioError, match="permission denied"):
            load_audio(p, 16000)
    finally:
        p.chmod(0o644)


# --------------------------------------------------------------------------- feature files
def test_feature_file_errors(tmp_path):
    feats = analyze(voice(), 16000, DIO)
    with pytest.raises(FeatureError, match="no such feature file"):
        load_features(tmp_path / "none.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(FeatureError, match="corrupt"):
        load_features(bad)
    save_features(tmp_path / "ok.npz", feats)
    check_compatible(load_features(tmp_path / "ok.npz"), DIO)
    with pytest.raises(FeatureError, match="config wants"):
        check_compatible(feats, FeatureConfig(mcep_order=24))
    with pytest.raises(FeatureError, match="frames"):
        Features(f0=feats.f0, mcep=feats.mcep[:-1], coded_ap=feats.coded_ap,
                 power_db=feats.power_db, fs=16000, frame_period=5.0, alpha=0.41, fft_size=1024)


def test_nonsilent_is_level_independent():
    x = voice(0.6)
    x[: 3200] *= 1e-3  # a quiet first 200 ms
    feats = analyze(x, 16000, DIO)
    quiet = analyze(0.1 * x, 16000, DIO)
    m = feats.nonsilent(-20.0)
    assert not m[5:35].any() and m[60:].all()
    np.testing.assert_array_equal(m, quiet.nonsilent(-20.0))


def test_atomic_outputs_have_normal_permissions(tmp_path):
    import os
    import stat

    from vawgan.io import atomic_write_text

    umask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
