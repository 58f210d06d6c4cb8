"""Speaker similarity (vawgan.speaker, `vawgan evaluate --target --centroids`): the
plumbing with a stand-in encoder (centroids, cache, identification, tables), the error
without the `eval` extra, and the real encoder on VCC2016 speakers when installed."""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vawgan import speaker
from vawgan.cli import main
from vawgan.errors import VawganError

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "vcc2016" / "vcc2016_training"
FS = 16000


def _tone(path: Path, f0: float, seconds: float = 1.0):
    t = np.arange(int(seconds * FS)) / FS
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 20))
    x = 0.1 * x + 1e-3 * np.random.default_rng(int(f0)).normal(size=len(t))
    sf.write(path, x, FS)
    return path


@pytest.fixture
def fake_encoder(monkeypatch):
    """An "encoder" that hears the pitch: the unit vector of (log f0 of the file's name
    prefix, 1) plus a little of the file's own hash; counts its calls."""
    calls = []

    def embed(path):
        calls.append(Path(path).name)
        f0 = float(Path(path).name.split("_")[0])
        rng = np.random.default_rng(zlib.crc32(Path(path).name.encode()))
        e = np.zeros(256)
        e[0], e[1] = np.cos(np.log(f0)), np.sin(np.log(f0))
        e[2:6] = 0.05 * rng.normal(size=4)
        return e / np.linalg.norm(e)

    monkeypatch.setattr(speaker, "load_encoder", lambda: object())
    monkeypatch.setattr(speaker, "embed_file", embed)
    monkeypatch.setattr(speaker, "encoder_id", lambda: "fake-1")
    return calls


@pytest.fixture
def voices(tmp_path):
    """Three "speakers" (tones at 100, 150, 220 Hz), 3 training files each, and a
    "converted" set: 2 files near 220 Hz (the target) and 1 near 100 Hz."""
    spk = {}
    for name, f0 in (("LOW", 100), ("MID", 150), ("HIGH", 220)):
        d = tmp_path / name
        d.mkdir()
        spk[name] = [_tone(d / f"{f0 + i}_{i}.wav", f0 + i) for i in range(3)]
    conv = tmp_path / "conv"
    conv.mkdir()
    for utt, f0 in (("u1", 221), ("u2", 219), ("u3", 101)):
        _tone(conv / f"{f0}_{utt}.wav", f0)
    return spk, conv


def test_centroids_are_cached_by_files(fake_encoder, voices, tmp_path):
    spk, _ = voices
    cache = tmp_path / "c.npz"
    c1 = speaker.speaker_centroids(spk, cache)
    assert len(fake_encoder) == 9 and cache.exists()
    assert all(abs(np.linalg.norm(c) - 1) < 1e-9 for c in c1.values())
    fake_encoder.clear()
    c2 = speaker.speaker_centroids(spk, cache)
    assert fake_encoder == [] and all(np.array_equal(c1[k], c2[k]) for k in c1)
    # one speaker's files change: only that speaker is embedded again
    os.utime(spk["MID"][0], ns=(1, 1))
    speaker.speaker_centroids(spk, cache)
    assert sorted(fake_encoder) == sorted(p.name for p in spk["MID"])
    with pytest.raises(VawganError, match="no files"):
        speaker.speaker_centroids({"X": []})
    with pytest.raises(VawganError, match="no such file"):
        speaker.speaker_centroids({"X": [tmp_path / "missing.wav"]})


def test_similarity_and_identification(fake_encoder, voices):
    spk, conv = voices
    cents = speaker.speaker_centroids(spk)
    near = speaker.similarity(speaker.embed_file(conv / "221_u1.wav"), cents, "HIGH")
    far = speaker.similarity(speaker.embed_file(conv / "101_u3.wav"), cents, "HIGH")
    assert near["spk_id"] == 1.0 and far["spk_id"] == 0.0
    assert near["spk_sim"] > 0.95 > 0.9 > far["spk_sim"]
    with pytest.raises(VawganError, match="no centroid"):
        speaker.similarity(cents["LOW"], cents, "NOBODY")


def test_evaluate_reports_speaker_columns(fake_encoder, voices, tmp_path, capsys):
    spk, conv = voices
    ref = tmp_path / "ref"
    ref.mkdir()
    for f in conv.iterdir():  # the "natural" recordings of the same utterances
        _tone(ref / f.name, 220)
    argv = ["evaluate", "--ref", str(ref), "--system", f"conv={conv}",
            "--out-json", str(tmp_path / "r.json")]
    assert main(argv) == 0
    assert "spk sim" not in capsys.readouterr().out  # optional columns absent
    cents = [f"--centroids={n}={spk[n][0].parent}" for n in spk]
    assert main(argv + ["--target", "HIGH", *cents]) == 0
    out = capsys.readouterr().out
    assert "spk sim" in out and "spk ID [%]" in out and "nearest of 3 speakers" in out
    s = json.loads((tmp_path / "r.json").read_text())["systems"]["conv"]
    assert s["summary"]["spk_id_acc"] == pytest.approx(2 / 3)
    assert {u: r["spk_id"] for u, r in s["utterances"].items()} == {
        "221_u1": 1.0, "219_u2": 1.0, "101_u3": 0.0}
    # one-line errors for incomplete options
    for extra, msg in ((["--target", "HIGH"], "needs both"),
                       (["--target", "NOPE", *cents], "not among"),
                       (["--target", "HIGH", "--centroids", "bad"], "expected SPK=DIR")):
        assert main(argv + extra) == 1
        assert msg in capsys.readouterr().err


def test_missing_extra_is_one_line(monkeypatch, voices, tmp_path, capsys):
    import builtins

    real = builtins.__import__

    def no_resemblyzer(name, *a, **kw):
        if name.startswith("resemblyzer"):
            raise ImportError(name)
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_resemblyzer)
    monkeypatch.setattr(speaker, "_ENCODER", {})
    spk, conv = voices
    rc = main(["evaluate", "--ref", str(conv), "--system", f"c={conv}", "--target", "HIGH",
               f"--centroids=HIGH={spk['HIGH'][0].parent}"])
    err = capsys.readouterr().err
    assert rc == 1 and "vawgan[eval]" in err and len(err.strip().splitlines()) == 1


@pytest.mark.data
def test_real_encoder_tells_vcc2016_speakers_apart(tmp_path):
    """Resemblyzer's own weights (the eval extra): natural sentences of TM1 and TF1,
    not used for the centroids, are nearest their own speaker's centroid."""
    pytest.importorskip("resemblyzer")
    if not DATA.is_dir():
        pytest.skip(f"{DATA} not available")
    spks = ("TM1", "TF1", "SM1")
    cents = speaker.speaker_centroids(
        {s: sorted((DATA / s).glob("1000*.*"))[:5] for s in spks}, tmp_path / "c.npz")
    for s in ("TM1", "TF1"):
        for f in sorted((DATA / s).glob("1001*.*"))[:3]:
            r = speaker.similarity(speaker.embed_file(f), cents, s)
            assert r["spk_id"] == 1.0 and r["spk_sim"] > 0.7, (f, r)
