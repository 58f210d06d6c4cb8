"""Tests of vawgan.stats: SpeakerStats, compute_speaker_stats, stats.json, vawgan stats."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vawgan.cli import main
from vawgan.config import FeatureConfig
from vawgan.errors import StatsError
from vawgan.features import Features, save_features
from vawgan.metrics import modulation_spectrum
from vawgan.stats import (SpeakerStats, compute_speaker_stats, load_stats, load_stats_document,
                          save_stats, set_gv_ms, stat_frames)

CFG = FeatureConfig()


def fake_features(seed, n=400, shift=0.0, cfg=CFG):
    """Features with a silent head and tail, voiced middle, random mcep."""
    rng = np.random.default_rng(seed)
    mcep = rng.normal(shift, 1.0, size=(n, cfg.mcep_order + 1)) * np.linspace(1, 0.1, 40)
    power = np.full(n, -10.0)
    power[:50] = power[-50:] = -80.0  # silence
    f0 = np.where(np.arange(n) % 3 == 0, 0.0, np.exp(rng.normal(5.0, 0.2, size=n)))
    f0[:50] = 0.0
    return Features(f0=f0, mcep=mcep, coded_ap=np.zeros((n, 1)), power_db=power, fs=cfg.fs,
                    frame_period=cfg.frame_period, alpha=cfg.resolved_alpha(),
                    fft_size=cfg.resolved_fft_size())


def test_compute_speaker_stats_definitions():
    feats = [fake_features(i, n=300 + 50 * i) for i in range(4)]
    st = compute_speaker_stats(feats, silence_db=-20.0, ms_fft=64)
    bodies = [f.mcep[50:-50, 1:] for f in feats]  # the non-silent frames, known by construction
    allb = np.concatenate(bodies)
    assert st.n_utts == 4 and st.n_frames == allb.shape[0]
    np.testing.assert_allclose(st.mcep_mean, allb.mean(0), rtol=1e-12)
    np.testing.assert_allclose(st.mcep_std, allb.std(0), rtol=1e-12)
    c0 = np.concatenate([f.mcep[50:-50, 0] for f in feats])
    np.testing.assert_allclose([st.c0_mean, st.c0_std], [c0.mean(), c0.std()], rtol=1e-12)
    lf0 = np.log(np.concatenate([f.f0[f.f0 > 0] for f in feats]))
    np.testing.assert_allclose([st.lf0_mean, st.lf0_std], [lf0.mean(), lf0.std()], rtol=1e-12)
    # GV: each utterance weighs the same (not the pooled variance)
    np.testing.assert_allclose(st.gv, np.mean([b.var(0) for b in bodies], 0), rtol=1e-12)
    assert not np.allclose(st.gv, allb.var(0), rtol=1e-3)
    # MS: mean over utterances of each utterance's log-power MS
    assert st.ms.shape == (33, 39)
    np.testing.assert_allclose(st.ms, np.mean([modulation_spectrum(b, 64) for b in bodies], 0))


def test_set_gv_ms_is_what_speaker_stats_store():
    """One implementation of a set's GV and MS: the speaker statistics use it, and an
    utterance with fewer than 2 frames is left out."""
    feats = [fake_features(i, n=300 + 50 * i) for i in range(3)]
    bodies = [stat_frames(f, -20.0) for f in feats]
    np.testing.assert_array_equal(bodies[0], feats[0].mcep[50:-50, 1:])
    gv, ms = set_gv_ms(bodies, 64)
    st = compute_speaker_stats(feats, silence_db=-20.0, ms_fft=64)
    np.testing.assert_array_equal(gv, st.gv)
    np.testing.assert_array_equal(ms, st.ms)
    gv1, ms1 = set_gv_ms(bodies + [bodies[0][:1]], 64)
    np.testing.assert_array_equal(gv1, gv)
    np.testing.assert_array_equal(ms1, ms)
    with pytest.raises(ValueError, match="no utterance has 2 frames"):
        set_gv_ms([bodies[0][:1]], 64)
    with pytest.raises(ValueError, match="n_fft"):
        set_gv_ms(bodies, 1)


def test_compute_speaker_stats_checks():
    with pytest.raises(ValueError, match="no utterances"):
        compute_speaker_stats([])
    f = fake_features(0)
    with pytest.raises(ValueError, match="ms_fft"):
        compute_speaker_stats([f], ms_fft=1)
    silent = f.replace(power_db=np.full(f.n_frames, -50.0))
    silent.power_db[0] = 0.0  # one loud frame: the rest is "silence"
    with pytest.raises(ValueError, match="2 non-silent frames"):
        compute_speaker_stats([silent])
    unvoiced = f.replace(f0=np.zeros(f.n_frames))
    with pytest.raises(ValueError, match="voiced"):
        compute_speaker_stats([unvoiced])


def test_dict_and_file_round_trip(tmp_path):
    st = compute_speaker_stats([fake_features(1), fake_features(2)], ms_fft=32)
    back = SpeakerStats.from_dict(json.loads(json.dumps(st.to_dict())))
    for k in ("mcep_mean", "mcep_std", "gv", "ms"):
        np.testing.assert_array_equal(getattr(back, k), getattr(st, k))
    assert (back.lf0_mean, back.n_frames) == (st.lf0_mean, st.n_frames)
    p = tmp_path / "stats.json"
    save_stats(p, {"B": st, "A": back}, {"fs": 16000}, 32)
    doc = load_stats_document(p)
    assert doc["format"] == "vawgan-stats" and doc["version"] == 1 and doc["ms_fft"] == 32
    assert list(doc["speakers"]) == ["A", "B"]
    assert len(doc["speakers"]["A"]["ms"]) == 17 and len(doc["speakers"]["A"]["gv"]) == 39
    loaded = load_stats(p)
    np.testing.assert_array_equal(loaded["B"].ms, st.ms)
    save_stats(tmp_path / "again.json", doc)  # a whole document is accepted too
    assert load_stats(tmp_path / "again.json").keys() == loaded.keys()
    with pytest.raises(ValueError, match="does not match"):
        save_stats(p, {"A": st}, {}, 64)


def _doc(tmp_path):
    st = compute_speaker_stats([fake_features(3)], ms_fft=16)
    p = tmp_path / "s.json"
    save_stats(p, {"X": st}, {}, 16)
    return p, json.loads(p.read_text())


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(format="other"), "not a vawgan statistics file"),
    (lambda d: d.update(version=9), "version 9"),
    (lambda d: d.update(speakers={}), "no speakers"),
    (lambda d: d["speakers"]["X"].pop("gv"), "missing gv"),
    (lambda d: d["speakers"]["X"].update(extra=1), "unknown key extra"),
    (lambda d: d["speakers"]["X"].update(gv=[1.0, 2.0]), "gv has shape"),
    (lambda d: d["speakers"]["X"].update(lf0_std=-1.0), "standard deviations"),
    (lambda d: d["speakers"]["X"].update(lf0_mean="a"), "lf0_mean must be a finite number"),
    (lambda d: d["speakers"]["X"].update(mcep_mean=["x"] * 39), "not a numeric array"),
    (lambda d: d.update(ms_fft=64), "ms has 9 bins"),
])
def test_load_rejects_wrong_files(tmp_path, mutate, message):
    p, doc = _doc(tmp_path)
    mutate(doc)
    p.write_text(json.dumps(doc))
    with pytest.raises(StatsError, match=message) as e:
        load_stats(p)
    assert str(p) in str(e.value)


def test_load_missing_and_corrupt(tmp_path):
    with pytest.raises(StatsError, match="not found"):
        load_stats(tmp_path / "nope.json")
    p, _ = _doc(tmp_path)
    p.write_text(p.read_text()[:50])
    with pytest.raises(StatsError, match="invalid JSON"):
        load_stats(p)
    p, doc = _doc(tmp_path)
    doc["speakers"]["X"]["gv"][3] = float("nan")
    p.write_text(json.dumps(doc))  # Python's json writes and reads NaN
    with pytest.raises(StatsError, match="gv contains NaN"):
        load_stats(p)


@pytest.fixture
def dump(tmp_path):
    root = tmp_path / "dump"
    for spk, shift in (("SF1", 0.0), ("TM1", 1.0)):
        for i in range(1, 6):
            save_features(root / spk / f"10000{i}.npz", fake_features(i, shift=shift))
    return root


def test_stats_command_with_exclusions_and_lists(dump, tmp_path, capsys):
    out = tmp_path / "stats.json"
    rc = main(["stats", "--dump", str(dump), "--out", str(out), "--exclude-utts", "100004-100005",
               "--no-progress"])
    assert rc == 0
    st = load_stats(out)
    assert sorted(st) == ["SF1", "TM1"] and st["SF1"].n_utts == 3
    assert st["TM1"].mcep_mean.mean() > st["SF1"].mcep_mean.mean()
    assert json.loads(out.read_text())["feature_config"]["fs"] == 16000
    lst = tmp_path / "train.list"
    lst.write_text("SF1/100001\nSF1/100002\n")
    rc = main(["stats", "--dump", str(dump), "--out", str(out), "--utts-file", str(lst),
               "--no-progress"])
    assert rc == 0 and list(load_stats(out)) == ["SF1"] and load_stats(out)["SF1"].n_utts == 2
    assert "SF1: 2 utts" in capsys.readouterr().out


def test_stats_command_errors(dump, tmp_path, capsys):
    out = tmp_path / "stats.json"
    conf = tmp_path / "conf.yaml"
    conf.write_text("feature:\n  frame_period: 10.0\n")
    rc = main(["stats", "--dump", str(dump), "--out", str(out), "--config", str(conf),
               "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and "config wants" in err and ".npz" in err and not out.exists()
    rc = main(["stats", "--dump", str(dump), "--out", str(out), "--exclude-utts", "100001-100005",
               "--no-progress"])
    assert rc == 1 and "no utterances selected" in capsys.readouterr().err
    (dump / "SF1" / "100001.npz").write_bytes(b"garbage")
    rc = main(["stats", "--dump", str(dump), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and "100001.npz" in err and "corrupt" in err


# ---------------------------------------------------------------------- vocoder GV ratio
def _voice(seed: int, seconds: float = 1.2, fs: int = 16000) -> np.ndarray:
    """A pulse train through two resonances with a drifting pitch: WORLD-analysable."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    f0 = 120.0 * (1 + 0.2 * np.sin(2 * np.pi * 1.5 * np.arange(n) / fs + seed))
    phase = np.cumsum(f0 / fs)
    x = (np.diff(np.floor(phase), prepend=0.0) > 0).astype(float) + 0.01 * rng.normal(size=n)
    for fc, bw in ((500.0 + 100 * seed, 80.0), (1500.0, 120.0)):
        r = np.exp(-np.pi * bw / fs)
        x = lfilter([1.0], [1.0, -2 * r * np.cos(2 * np.pi * fc / fs), r * r], x)
    return 0.5 * x / np.max(np.abs(x))


def test_gv_resynth_ratio_is_the_vocoders_gv_change(tmp_path):
    """The ratio compute_speaker_stats stores is GV(re-analysed resynthesis) / GV(natural)
    over the first ``resynth_utts`` utterances, the same as the files that
    ``vawgan analysis-synthesis`` writes give when analysed again."""
    import soundfile as sf

    from vawgan.anasyn import analysis_synthesis
    from vawgan.features import analyze, analyze_file
    from vawgan.metrics import global_variance
    from vawgan.stats import resynthesis_bodies

    feats = [analyze(_voice(i), 16000, CFG) for i in range(3)]
    st = compute_speaker_stats(feats, ms_fft=32, resynth_utts=2, feature_config=CFG, jobs=2)
    assert st.gv_resynth_ratio.shape == (39,)
    assert compute_speaker_stats(feats, ms_fft=32).gv_resynth_ratio is None
    nat, res = [], []
    for i in range(2):  # the file path: write, resynthesize to a file, analyse that file
        sf.write(tmp_path / f"{i}.wav", _voice(i), 16000, subtype="FLOAT")
        analysis_synthesis(tmp_path / f"{i}.wav", tmp_path / f"{i}_re.wav", CFG, metrics=False)
        nat.append(stat_frames(analyze_file(tmp_path / f"{i}.wav", CFG)[0], CFG.silence_db))
        res.append(stat_frames(analyze_file(tmp_path / f"{i}_re.wav", CFG)[0], CFG.silence_db))
    files_ratio = global_variance(res) / global_variance(nat)
    # the same up to the 16-bit quantization of the written resynthesis
    np.testing.assert_allclose(np.log10(st.gv_resynth_ratio), np.log10(files_ratio), atol=0.02)
    assert np.abs(np.log10(st.gv_resynth_ratio)).max() > 0.01  # the vocoder does change GV
    a, b = resynthesis_bodies(feats[:2], CFG)
    np.testing.assert_allclose(st.gv_resynth_ratio, global_variance(b) / global_variance(a))


def test_gv_resynth_ratio_round_trip_and_postfilter_target(tmp_path):
    st = compute_speaker_stats([fake_features(1), fake_features(2)], ms_fft=32)
    assert st.gv_resynth_ratio is None and "gv_resynth_ratio" not in st.to_dict()
    np.testing.assert_array_equal(st.postfilter_target("gv"), st.gv)
    d = st.to_dict()
    d["gv_resynth_ratio"] = np.linspace(0.8, 1.2, 39).tolist()
    st2 = SpeakerStats.from_dict(d)
    np.testing.assert_allclose(st2.postfilter_target("gv"), st.gv / np.linspace(0.8, 1.2, 39))
    np.testing.assert_array_equal(st2.postfilter_target("ms"), st.ms)
    p = tmp_path / "stats.json"
    save_stats(p, {"A": st2, "B": st}, {}, 32)
    loaded = load_stats(p)
    np.testing.assert_array_equal(loaded["A"].gv_resynth_ratio, st2.gv_resynth_ratio)
    assert loaded["B"].gv_resynth_ratio is None  # statistics made before it load as they were
    for bad, msg in (([1.0] * 3, "gv_resynth_ratio has shape"),
                     ([0.0] * 39, "gv_resynth_ratio must be finite and > 0")):
        with pytest.raises(ValueError, match=msg):
            SpeakerStats.from_dict(dict(d, gv_resynth_ratio=bad))
    with pytest.raises(ValueError, match="kind"):
        st.postfilter_target("none")


def test_stats_resynth_utts_config_checked():
    from vawgan.config import Config
    from vawgan.errors import ConfigError

    assert Config().stats.resynth_utts == 10
    with pytest.raises(ConfigError, match="resynth_utts"):
        Config.from_dict({"stats": {"resynth_utts": -1}})
