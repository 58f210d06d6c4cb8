"""Tests of vawgan.uttmetrics: the one per-utterance metrics path, its units, and that
every command computes its per-utterance figures with it."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest

from vawgan.features import Features
from vawgan.metrics import (global_variance, gv_distance, mel_cepstral_distortion,
                            modulation_spectrum, ms_distance, vuv_error)
from vawgan.stats import set_gv_ms, stat_frames
from vawgan.uttmetrics import compare_utterances, utterance_metrics

REPO = Path(__file__).resolve().parents[1]


def _features(mcep, f0, power_db):
    t = len(f0)
    return Features(f0=f0, mcep=mcep, coded_ap=np.zeros((t, 1)), power_db=power_db, fs=16000,
                    frame_period=5.0, alpha=0.41, fft_size=1024)


def _pair(seed=10, t=120):
    """(conv, ref): random mcep and f0 with a silent lead-in; conv is ref shifted, with a
    few voicing errors."""
    rng = np.random.default_rng(seed)
    mcep = rng.normal(size=(t, 40))
    f0 = np.where(rng.random(t) > 0.3, rng.uniform(100, 200, t), 0.0)
    power = np.full(t, -10.0)
    power[:15] = -80.0  # silent lead-in
    ref = _features(mcep, f0, power)
    f0c = f0 * 1.05
    f0c[rng.random(t) < 0.1] = 0.0
    conv = _features(0.8 * mcep + 0.1 * rng.normal(size=mcep.shape), f0c, power)
    return conv, ref


def test_compare_utterances_identity_and_silence():
    _, ref = _pair()
    mcep, f0, power, t = ref.mcep, ref.f0, ref.power_db, ref.n_frames
    res = compare_utterances(ref, ref)
    assert res["mcd"] == 0.0 and res["f0_rmse"] == 0.0 and res["vuv_error"] == 0.0
    assert res["logf0_corr"] == pytest.approx(1.0)
    assert res["n_frames"] == t - 15
    # garbage in the silent frames must not count
    mcep2 = mcep.copy()
    mcep2[:15] = 100.0
    res2 = compare_utterances(_features(mcep2, f0, power), ref, return_path=True)
    assert res2["mcd"] == 0.0
    ix, iy = res2["path"]
    assert ix.min() == 15 and iy.min() == 15
    # a shifted f0 shows up on the same path
    res3 = compare_utterances(_features(mcep, f0 * 1.1, power), ref)
    assert res3["mcd"] == 0.0 and res3["f0_rmse"] > 5.0 and res3["vuv_error"] == 0.0


def test_utterance_metrics_keys_units_and_definitions():
    conv, ref = _pair()
    gv, ms = set_gv_ms([stat_frames(ref, -20.0)], 64)
    m = utterance_metrics(conv, silence_db=-20.0, ms_fft=64, target_gv=gv, target_ms=ms, ref=ref)
    assert set(m) == {"gv_distance", "gv_distance_mcd", "gv_ratio", "gv_ratio_mcd",
                      "ms_distance", "mcd", "f0_rmse", "logf0_corr", "vuv_error", "n_frames"}
    assert isinstance(m["n_frames"], int)
    assert all(type(v) is float for k, v in m.items() if k != "n_frames")
    # each figure is the array function of vawgan.metrics on the documented frames
    body = conv.mcep[15:, 1:]
    assert m["gv_distance"] == gv_distance(global_variance(body), gv)
    assert m["gv_distance_mcd"] == gv_distance(global_variance(body)[:24], gv[:24])
    ratio = global_variance(body) / gv  # conv = 0.8 ref + noise: about 0.65
    assert m["gv_ratio"] == pytest.approx(np.exp(np.mean(np.log(ratio))), rel=1e-12)
    assert m["gv_ratio_mcd"] == pytest.approx(np.exp(np.mean(np.log(ratio[:24]))), rel=1e-12)
    assert 0.5 < m["gv_ratio"] < 0.8
    assert m["ms_distance"] == ms_distance(modulation_spectrum(body, 64), ms, n_fft=64,
                                           precomputed=True)
    mcd, (ix, iy) = mel_cepstral_distortion(conv.mcep, ref.mcep, conv_mask=conv.nonsilent(),
                                            ref_mask=ref.nonsilent(), return_path=True)
    assert m["mcd"] == mcd and m["n_frames"] == ix.size
    # V/UV error is a fraction of the aligned pairs, never a percentage
    want = vuv_error(conv.f0[ix], ref.f0[iy])
    assert m["vuv_error"] == want and 0.0 < want < 1.0
    assert want == np.mean((conv.f0[ix] > 0) != (ref.f0[iy] > 0))


def test_utterance_metrics_optional_parts():
    conv, ref = _pair()
    gv, ms = set_gv_ms([stat_frames(ref, -20.0)], 64)
    assert utterance_metrics(conv, silence_db=-20.0) == {}
    assert set(utterance_metrics(conv, silence_db=-20.0, target_gv=gv)) == {
        "gv_distance", "gv_distance_mcd", "gv_ratio", "gv_ratio_mcd"}
    assert set(utterance_metrics(conv, silence_db=-20.0, ref=ref)) == {
        "mcd", "f0_rmse", "logf0_corr", "vuv_error", "n_frames"}
    # fewer than 2 non-silent frames: no GV / MS distance (but no error)
    power = np.full(conv.n_frames, -80.0)
    power[20] = 0.0
    quiet = conv.replace(power_db=power)
    assert utterance_metrics(quiet, silence_db=-20.0, ms_fft=64, target_gv=gv,
                             target_ms=ms) == {}


@pytest.mark.parametrize("kw, want", [
    (dict(target_gv=np.ones(5)), "target_gv must have shape (39,)"),
    (dict(target_gv=np.full(39, np.nan)), "target_gv contains NaN"),
    (dict(target_ms=np.zeros((33, 39))), "needs the ms_fft"),
    (dict(target_ms=np.zeros((33, 39)), ms_fft=128), "target_ms must have shape (65, 39)"),
    (dict(target_ms=np.zeros((33, 39)), ms_fft=1), "n_fft must be an integer"),
    (dict(silence_db=float("nan")), "silence_db must be a finite number"),
    (dict(mcd_dims=0), "mcd_dims must be an integer >= 1"),
])
def test_utterance_metrics_argument_checks(kw, want):
    conv, _ = _pair()
    kw = {"silence_db": -20.0, **kw}
    with pytest.raises(ValueError, match=want.replace("(", r"\(").replace(")", r"\)")):
        utterance_metrics(conv, **kw)


# ----------------------------------------------------------------------------- one path
#: the array functions a per-utterance or per-set figure is made of
_BUILDING_BLOCKS = {"compare_utterances", "mel_cepstral_distortion", "f0_rmse",
                    "logf0_correlation", "vuv_error", "gv_distance", "ms_distance",
                    "global_variance", "modulation_spectrum"}
#: where they may be called: their own modules, and the speaker statistics
_ALLOWED = {"vawgan/metrics.py": _BUILDING_BLOCKS, "vawgan/uttmetrics.py": _BUILDING_BLOCKS,
            "vawgan/stats.py": {"global_variance", "modulation_spectrum"},
            # the MS postfilter filters toward a target MS
            "vawgan/postfilter.py": {"modulation_spectrum"},
            # set-level distances between two set_gv_ms results
            "vawgan/evaluate.py": {"gv_distance", "ms_distance"},
            "recipes/vcc/local/compare_bundles.py": {"gv_distance", "ms_distance"}}


def _calls(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else getattr(f, "attr", None)
            if name in _BUILDING_BLOCKS:
                yield name, node.lineno


def test_every_caller_goes_through_utterance_metrics():
    """Outside vawgan.metrics / uttmetrics / stats, no module computes a per-utterance
    metric (or a set's GV / MS) by itself: all go through utterance_metrics and
    stats.set_gv_ms, so every command reports the same figures in the same units."""
    files = sorted((REPO / "vawgan").glob("*.py")) + sorted((REPO / "recipes").rglob("*.py"))
    bad = []
    for path in files:
        rel = path.relative_to(REPO).as_posix()
        for name, line in _calls(path):
            if name not in _ALLOWED.get(rel, set()):
                bad.append(f"{rel}:{line}: {name}")
    assert not bad, "metrics computed outside the one path:\n" + "\n".join(bad)


def test_analysis_synthesis_is_utterance_metrics(tmp_path):
    """vawgan analysis-synthesis reports utterance_metrics of the re-analysis, with the
    input as reference and the input's own GV / MS as natural statistics."""
    pysptk = pytest.importorskip("pysptk")
    from vawgan.anasyn import analysis_synthesis
    from vawgan.config import FeatureConfig
    from vawgan.features import analyze_file

    cfg = FeatureConfig()
    src = pysptk.util.example_audio_file()
    res = analysis_synthesis(src, tmp_path / "o.wav", cfg, ms_fft=128)
    feats, resyn = analyze_file(src, cfg)[0], analyze_file(tmp_path / "o.wav", cfg)[0]
    gv, ms = set_gv_ms([stat_frames(feats, cfg.silence_db)], 128)
    m = utterance_metrics(resyn, silence_db=cfg.silence_db, ms_fft=128, target_gv=gv,
                          target_ms=ms, ref=feats)
    for k in ("gv_distance", "ms_distance", "mcd", "f0_rmse", "logf0_corr", "vuv_error"):
        assert res[k] == m[k] or (math.isnan(res[k]) and math.isnan(m[k])), k
    assert res["n_aligned"] == m["n_frames"] and 0.0 <= res["vuv_error"] < 1.0
