"""Long inputs (issue 11, item 1): pieces cut at pauses give the features, the
synthesis, the conversion and the audio of the whole-signal path.

The limits are lowered with monkeypatch so that a few seconds of audio take the long
path; ``benchmarks/bench_long.py`` measures the real thing (memory, time per length).
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from vawgan import audio, chunks, features
from vawgan.chunks import frame_energy, plan_chunks
from vawgan.config import FeatureConfig

pysptk = pytest.importorskip("pysptk")

FS = 16000


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """~10 s: the ARCTIC sentence four times, with 0.4 s pauses between."""
    x, fs = sf.read(pysptk.util.example_audio_file())
    assert fs == FS
    pause = np.zeros(int(0.4 * FS))
    return np.concatenate([np.concatenate([x, pause]) for _ in range(4)])


@pytest.fixture
def short_limits(monkeypatch):
    """Anything over 2 s is long; pieces of ~2.5 s, cut within +-0.8 s."""
    monkeypatch.setattr(chunks, "LONG_SECONDS", 2.0)
    monkeypatch.setattr(chunks, "CHUNK_SECONDS", 2.5)
    monkeypatch.setattr(chunks, "SEARCH_SECONDS", 0.8)


def test_plan_covers_everything_and_cuts_at_the_quietest_frame():
    e = np.ones(1000)
    e[226:235] = e[466:475] = 0.0  # two pauses
    plan = plan_chunks(e, frames_per_s=100, chunk_s=2.5, search_s=0.5)
    assert plan[0][0] == 0 and plan[-1][1] == 1000
    assert all(b0 == a1 for (_, b0), (a1, _) in zip(plan, plan[1:]))
    cuts = [a for a, _ in plan[1:]]
    assert 226 <= cuts[0] < 235 and 466 <= cuts[1] < 475  # inside the pauses
    assert all(b - a <= 300 for a, b in plan)
    assert plan_chunks(np.ones(50), 100) == [(0, 50)]


def test_frame_energy_matches_a_plain_computation():
    x = np.random.default_rng(0).normal(size=80 * 7 + 33)
    e = frame_energy(x, 80)
    assert e.shape == (8,)
    np.testing.assert_allclose(e[:7], (x[:560] ** 2).reshape(7, 80).mean(1))
    assert e[7] == pytest.approx(np.mean(x[560:] ** 2))


@pytest.mark.parametrize("method", ["dio", "harvest"])
def test_chunked_analysis_equals_whole(speech, short_limits, method):
    cfg = FeatureConfig(f0_method=method)
    whole = features._analyze_arrays(speech, FS, cfg, cfg.resolved_fft_size(),
                                     cfg.resolved_alpha())
    feats = features.analyze(speech, FS, cfg)  # long now: in pieces
    assert len(plan_chunks(feats.power_db, 200)) >= 3
    assert feats.n_frames == len(whole[0]) == len(speech) // 80 + 1
    f0w, f0c = whole[0], feats.f0
    assert np.mean((f0w > 0) != (f0c > 0)) < 0.005
    both = (f0w > 0) & (f0c > 0)
    assert np.median(np.abs(f0w[both] - f0c[both]) / f0w[both]) < 1e-3
    d = whole[1][:, 1:25] - feats.mcep[:, 1:25]
    mcd = 10 / np.log(10) * np.sqrt(2 * np.sum(d ** 2, axis=1))
    assert mcd.mean() < 0.1  # dB, against ~2 dB for an analysis-synthesis
    np.testing.assert_allclose(feats.level_db, features.signal_level_db(speech))


def test_chunked_synthesis_keeps_length_level_and_spectrum(speech, short_limits):
    cfg = FeatureConfig(f0_method="dio")
    feats = features.analyze(speech, FS, cfg)
    whole = features._synthesize(features.synthesis_f0(feats.f0, FS), feats.mcep,
                                 feats.coded_ap, feats)
    y = features.synthesize(feats)  # long: in pieces
    assert len(y) == len(whole) == feats.n_frames * 80
    assert abs(features.signal_level_db(y) - features.signal_level_db(whole)) < 0.1
    # WORLD places pulses by the phase accumulated from the start of what it is given,
    # so after a cut the waveform differs; what matters is the spectrum. Baseline: the
    # whole-signal synthesis with f0 0.1 % higher (inaudible), which moves the pulses too.
    nudged = features._synthesize(features.synthesis_f0(feats.f0 * 1.001, FS), feats.mcep,
                                  feats.coded_ap, feats)
    speech_frames, t = feats.nonsilent(-20.0), feats.n_frames
    ref = features.analyze(whole, FS, cfg).mcep[:t]

    def mcd(sig):
        d = (features.analyze(sig, FS, cfg).mcep[:t] - ref)[speech_frames, 1:25]
        return float(np.mean(10 / np.log(10) * np.sqrt(2 * np.sum(d ** 2, axis=1))))

    assert mcd(y) < 1.5 * mcd(nudged)  # measured: 1.95 vs 1.55 dB


def test_long_file_read_in_blocks_equals_whole_read(tmp_path, speech, monkeypatch):
    stereo = np.stack([speech, 0.5 * speech], axis=1) * 0.5
    p = tmp_path / "s.wav"
    sf.write(p, stereo, FS, subtype="FLOAT")
    x0, fs0 = audio.read_audio(p)
    monkeypatch.setattr(audio, "LONG_READ_SECONDS", 1.0)
    x1, fs1 = audio.read_audio(p)
    assert fs0 == fs1 == FS and x1.dtype == np.float32
    np.testing.assert_allclose(x1, x0, atol=1e-6)


def test_blocked_conversion_graph_equals_one_run(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from vawgan import bundle as bundle_mod
    from vawgan.config import Config
    from vawgan.export import save_bundle
    from vawgan.model import build_model
    from vawgan.stats import SpeakerStats

    d = 39
    st = SpeakerStats(n_utts=1, n_frames=100, mcep_mean=np.zeros(d), mcep_std=np.ones(d),
                      lf0_mean=5.0, lf0_std=0.2, c0_mean=-3.0, c0_std=1.0,
                      gv=np.ones(d), ms=np.zeros((129, d)))
    for arch in ("mlp", "conv"):
        cfg = Config.from_dict({"model": {"arch": arch, "z_dim": 4, "hidden": 16,
                                          "n_layers": 2, "spk_dim": 2, "critic_hidden": 8,
                                          "critic_layers": 1}})
        torch.manual_seed(0)
        path = tmp_path / f"{arch}.pt"
        save_bundle(path, model=build_model(cfg.model, 2, d), config=cfg, speakers=["A", "B"],
                    stats={"A": st, "B": st}, kind="vae", train_info={})
        b = bundle_mod.load_bundle(path)
        x = np.random.default_rng(1).normal(size=(700, d))
        one = b.run_graph(x, 1)
        monkeypatch.setattr(bundle_mod, "GRAPH_BLOCK", 64)
        blocked = b.run_graph(x, 1)
        monkeypatch.undo()
        np.testing.assert_allclose(blocked, one, atol=1e-5, err_msg=arch)


def test_dtw_limit(monkeypatch):
    from vawgan import uttmetrics
    from vawgan.features import Features

    rng = np.random.default_rng(0)

    def feats(t):
        return Features(f0=np.full(t, 120.0), mcep=rng.normal(size=(t, 40)),
                        coded_ap=np.zeros((t, 1)), power_db=np.zeros(t), fs=FS,
                        frame_period=5.0, alpha=0.41, fft_size=1024)

    a, b = feats(50), feats(50)
    want = uttmetrics.compare_utterances(a, b)["mcd"]
    monkeypatch.setattr(uttmetrics, "MAX_DTW_CELLS", 100)
    same_grid = uttmetrics.compare_utterances(a, b)
    assert same_grid["n_frames"] == 50 and same_grid["mcd"] >= want  # frame by frame
    with pytest.warns(UserWarning, match="too long for DTW"):
        r = uttmetrics.compare_utterances(a, feats(60))
    assert np.isnan(r["mcd"]) and r["n_frames"] == 0
