"""Tests of vawgan.extract: corpus -> dump, resume, failures, manifest, Dask, CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from vawgan.cli import main
from vawgan.config import FeatureConfig
from vawgan.corpus import list_corpus, parse_utt_spec, read_utt_list
from vawgan.errors import CorpusError, VawganError
from vawgan.extract import extract_corpus, is_done, iter_dump
from vawgan.features import analyze_file, load_features

CFG = FeatureConfig(f0_method="dio")  # DIO keeps the tests quick; the pipeline is the same


def voice(seconds=0.5, f0=150.0, fs=16000, seed=0):
    """A harmonic 'vowel' with vibrato and a little noise."""
    t = np.arange(int(seconds * fs)) / fs
    f = f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))
    ph = 2 * np.pi * np.cumsum(f) / fs
    x = sum(0.3 / k * np.sin(k * ph) for k in range(1, 15))
    return x + 0.003 * np.random.default_rng(seed).normal(size=t.size)


@pytest.fixture
def corpus(tmp_path):
    import soundfile as sf

    root = tmp_path / "corpus"
    (root / "A").mkdir(parents=True)
    (root / "B").mkdir()
    for i in range(3):
        sf.write(root / "A" / f"u{i}.wav", voice(seed=i), 16000)
    for i in range(2):
        sf.write(root / "B" / f"u{i}.flac", voice(f0=220, seed=10 + i), 16000)
    (root / "A" / "bad.wav").write_bytes(b"this is not audio at all" * 10)
    (root / "A" / "README.txt").write_text("not an utterance")
    return root


def test_extract_writes_the_pipeline_features_and_manifest(corpus, tmp_path):
    out = tmp_path / "dump"
    res = extract_corpus(corpus, out, CFG, f0_ranges={"B": (100.0, 400.0)}, progress=False,
                         log=lambda m: None)
    assert sorted(res.extracted) == [("A", "u0"), ("A", "u1"), ("A", "u2"), ("B", "u0"), ("B", "u1")]
    assert [(f["speaker"], f["utt"]) for f in res.failures] == [("A", "bad")]
    assert str(corpus / "A" / "bad.wav") in res.failures[0]["error"]
    # the dump holds exactly what analyze_file gives with the speaker's range
    feats = load_features(out / "B" / "u1.npz")
    ref, _ = analyze_file(corpus / "B" / "u1.flac", CFG.for_speaker(100.0, 400.0))
    np.testing.assert_array_equal(feats.mcep, ref.mcep)
    np.testing.assert_array_equal(feats.f0, ref.f0)
    man = json.loads((out / "manifest.json").read_text())
    assert set(man) >= {"feature_config", "utterances", "failures"}
    assert man["feature_config"]["f0_method"] == "dio"
    assert len(man["utterances"]) == 5
    for e in man["utterances"]:
        assert not os.path.isabs(e["path"])
        assert load_features(out / e["path"]).n_frames == e["n_frames"]
        assert Path(e["source"]).stem == e["utt"]
    assert man["failures"][0]["utt"] == "bad"
    assert not list(out.rglob("*.tmp*"))


def test_resume_skips_valid_and_redoes_corrupt_or_changed(corpus, tmp_path):
    out = tmp_path / "dump"
    extract_corpus(corpus, out, CFG, speakers=["A"], progress=False, log=lambda m: None)
    stamp = (out / "A" / "u1.npz").stat().st_mtime_ns
    (out / "A" / "u0.npz").write_bytes((out / "A" / "u0.npz").read_bytes()[:100])  # partial
    res = extract_corpus(corpus, out, CFG, speakers=["A"], progress=False, log=lambda m: None)
    assert res.extracted == [("A", "u0")]
    assert sorted(res.skipped) == [("A", "u1"), ("A", "u2")]
    assert (out / "A" / "u1.npz").stat().st_mtime_ns == stamp
    assert is_done(out / "A" / "u0.npz", CFG) is not None
    # a new f0 range for the speaker, or another frame period, makes the old files stale
    assert is_done(out / "A" / "u1.npz", CFG.for_speaker(60.0, 300.0)) is None
    res = extract_corpus(corpus, out, CFG, speakers=["A"], f0_ranges={"A": (60.0, 300.0)},
                         progress=False, log=lambda m: None)
    assert len(res.extracted) == 3 and not res.skipped
    cfg10 = FeatureConfig(f0_method="dio", frame_period=10.0)
    assert is_done(out / "A" / "u1.npz", cfg10) is None


def test_manifest_keeps_speakers_of_earlier_runs(corpus, tmp_path):
    out = tmp_path / "dump"
    extract_corpus(corpus, out, CFG, speakers=["A"], progress=False, log=lambda m: None)
    res = extract_corpus(corpus, out, CFG, speakers=["B"], progress=False, log=lambda m: None)
    assert {e["speaker"] for e in res.utterances} == {"A", "B"}
    assert [s for s, _, _ in iter_dump(out)].count("A") == 3


def test_two_jobs_give_the_same_dump(corpus, tmp_path):
    r1 = extract_corpus(corpus, tmp_path / "d1", CFG, speakers=["B"], jobs=1, progress=False)
    r2 = extract_corpus(corpus, tmp_path / "d2", CFG, speakers=["B"], jobs=2, progress=False)
    assert sorted(r1.extracted) == sorted(r2.extracted)
    for utt in ("u0", "u1"):
        a = load_features(tmp_path / "d1" / "B" / f"{utt}.npz")
        b = load_features(tmp_path / "d2" / "B" / f"{utt}.npz")
        np.testing.assert_array_equal(a.f0, b.f0)
        # BLAS may sum in another order with another thread count: equal to rounding
        np.testing.assert_allclose(a.mcep, b.mcep, rtol=1e-9, atol=1e-12)


def test_dask_scheduler(corpus, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        res = extract_corpus(corpus, tmp_path / "dump", CFG, speakers=["B"],
                             scheduler=cluster.scheduler_address, progress=False)
    assert sorted(res.extracted) == [("B", "u0"), ("B", "u1")]
    assert (tmp_path / "dump" / "B" / "u0.npz").is_file()


def test_unreachable_scheduler_is_one_line_error(corpus, tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    import vawgan.extract as ex

    monkeypatch.setattr(ex, "DASK_TIMEOUT", "1s")
    with pytest.raises(VawganError) as e:
        extract_corpus(corpus, tmp_path / "dump", CFG, speakers=["B"],
                       scheduler="tcp://127.0.0.1:9", progress=False)
    assert "tcp://127.0.0.1:9" in str(e.value) and "\n" not in str(e.value)


def test_utts_selection_and_missing_listed_utterance(corpus, tmp_path):
    res = extract_corpus(corpus, tmp_path / "dump", CFG, utts=[("A", "u1"), ("A", "nope")],
                         progress=False, log=lambda m: None)
    assert res.extracted == [("A", "u1")]
    assert [f["utt"] for f in res.failures] == ["nope"]


def test_list_corpus_errors(tmp_path, corpus):
    with pytest.raises(CorpusError, match="not found"):
        list_corpus(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CorpusError, match="not a directory"):
        list_corpus(tmp_path / "file")
    with pytest.raises(CorpusError, match="'Z'"):
        list_corpus(corpus, speakers=["Z"])
    items, _ = list_corpus(corpus)
    assert all(p.suffix in (".wav", ".flac") for _, _, p in items)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_corpus_dir(tmp_path):
    d = tmp_path / "locked"
    d.mkdir()
    d.chmod(0)
    try:
        with pytest.raises(CorpusError, match="permission denied"):
            list_corpus(d)
    finally:
        d.chmod(0o755)


def test_utt_list_and_spec(tmp_path):
    p = tmp_path / "train.list"
    p.write_text("# training split\nSF1/100001\n\nTM3/100002  # comment\n")
    assert read_utt_list(p) == [("SF1", "100001"), ("TM3", "100002")]
    p.write_text("SF1/100001\n100002\n")
    with pytest.raises(CorpusError, match=r"train.list:2: expected 'speaker/utt'"):
        read_utt_list(p)
    with pytest.raises(CorpusError, match="not found"):
        read_utt_list(tmp_path / "none.list")
    assert parse_utt_spec(["100151-100153", "x7"]) == {"100151", "100152", "100153", "x7"}
    assert parse_utt_spec(["0008-0010"]) == {"0008", "0009", "0010"}
    with pytest.raises(ValueError):
        parse_utt_spec(["5-3"])


def test_iter_dump_with_and_without_manifest(corpus, tmp_path):
    out = tmp_path / "dump"
    extract_corpus(corpus, out, CFG, progress=False, log=lambda m: None)
    full = list(iter_dump(out))
    assert [(s, u) for s, u, _ in full] == [("A", "u0"), ("A", "u1"), ("A", "u2"),
                                            ("B", "u0"), ("B", "u1")]
    assert all(p.is_file() for _, _, p in full)
    (out / "manifest.json").unlink()
    assert list(iter_dump(out)) == full
    assert [u for _, u, _ in iter_dump(out, speakers=["A"], exclude_utts={"u1"})] == ["u0", "u2"]
    assert [(s, u) for s, u, _ in iter_dump(out, utts=[("B", "u1")])] == [("B", "u1")]
    (out / "manifest.json").write_text("{broken")
    with pytest.raises(CorpusError, match="manifest.json"):
        list(iter_dump(out))


def _write_cfg(tmp_path):
    p = tmp_path / "conf.yaml"
    p.write_text("feature:\n  f0_method: dio\n")
    return p


def test_cli_reports_failures_and_succeeds(corpus, tmp_path, capsys):
    rc = main(["extract", "--corpus", str(corpus), "--out", str(tmp_path / "dump"),
               "--config", str(_write_cfg(tmp_path)), "--no-progress"])
    out = capsys.readouterr()
    assert rc == 1  # partial failure: the good files are kept, the exit code says so
    assert "5 extracted" in out.out and "1 failed" in out.out
    assert "bad.wav" in out.out and "bad.wav" in out.err


def test_cli_nothing_extracted_and_bad_corpus(tmp_path, capsys):
    root = tmp_path / "c"
    (root / "S").mkdir(parents=True)
    (root / "S" / "x.wav").write_bytes(b"")
    rc = main(["extract", "--corpus", str(root), "--out", str(tmp_path / "dump"), "--no-progress"])
    assert rc == 1
    assert "empty file" in capsys.readouterr().out
    rc = main(["extract", "--corpus", str(tmp_path / "nowhere"), "--out", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert rc == 1 and "nowhere" in err and "Traceback" not in err and err.count("\n") == 1


def test_cli_f0_dir(corpus, tmp_path):
    f0dir = tmp_path / "f0"
    f0dir.mkdir()
    (f0dir / "A.yaml").write_text("f0_floor: 90\nf0_ceil: 300\n")
    rc = main(["extract", "--corpus", str(corpus), "--out", str(tmp_path / "dump"),
               "--speakers", "A", "--f0-dir", str(f0dir), "--config", str(_write_cfg(tmp_path)),
               "--no-progress", "--jobs", "1"])
    assert rc == 1  # bad.wav fails; the others are extracted
    cfg_a = CFG.for_speaker(90.0, 300.0)
    assert is_done(tmp_path / "dump" / "A" / "u0.npz", cfg_a) is not None
    man = json.loads((tmp_path / "dump" / "manifest.json").read_text())
    assert man["f0_ranges"] == {"A": [90.0, 300.0]}


def test_scheduler_without_dask_is_one_line_error(corpus, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(VawganError, match=r"needs Dask distributed: pip install"):
        extract_corpus(corpus, tmp_path / "dump", CFG, speakers=["B"],
                       scheduler="tcp://127.0.0.1:8786", progress=False)
