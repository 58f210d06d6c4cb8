"""Tests of ``vawgan analysis-synthesis`` through ``vawgan.cli.main``."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vawgan.cli import main

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def arctic(tmp_path_factory):
    """The ARCTIC utterance shipped in pysptk's wheel, copied (16 kHz)."""
    pysptk = pytest.importorskip("pysptk")
    src = Path(pysptk.util.example_audio_file())
    dst = tmp_path_factory.mktemp("in") / "arctic.wav"
    shutil.copyfile(src, dst)
    return dst


def _run(capsys, *argv):
    rc = main(["analysis-synthesis", *map(str, argv)])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_anasyn_json_figures(arctic, tmp_path, capsys):
    out = tmp_path / "sub" / "resyn.wav"  # missing folder is created
    # a male speaker: with the default 50..500 Hz range Harvest makes octave errors
    rc, stdout, err = _run(capsys, arctic, out, "--json", "--f0-floor", "60", "--f0-ceil", "300")
    assert rc == 0, err
    res = json.loads(stdout)
    info_in, info_out = sf.info(str(arctic)), sf.info(str(out))
    assert info_out.samplerate == info_in.samplerate
    assert abs(info_out.duration - info_in.duration) < 0.05
    # the vocoder floor: clearly not zero (WORLD is lossy) and not broken
    assert 0.3 < res["mcd"] < 5.0
    assert 0.0 < res["gv_distance"] < 0.2
    assert 0.0 < res["ms_distance"] < 10.0
    assert res["vuv_error"] < 0.15
    assert math.isfinite(res["f0_rmse"]) and res["f0_rmse"] < 30.0
    assert res["logf0_corr"] > 0.8
    assert res["n_nonsilent"] <= res["n_frames"]
    assert not list(out.parent.glob(".*.tmp*"))  # no temporary left behind


def test_anasyn_text_output_and_rate(arctic, tmp_path, capsys):
    out = tmp_path / "resyn.flac"
    rc, stdout, err = _run(capsys, arctic, out, "--sr", "22050", "--f0-floor", "60",
                           "--f0-ceil", "400")
    assert rc == 0, err
    assert sf.info(str(out)).samplerate == 22050
    for key in ("MCD", "F0 RMSE", "GV distance", "MS distance", "V/UV error"):
        assert key in stdout
    mcd = float(stdout.split("MCD")[1].split()[0])
    # not compared with the 16 kHz floor: the 16 -> 22.05 -> 16 kHz resampling round
    # trip alone empties the band near 8 kHz, which costs several dB of MCD
    assert 0.3 < mcd < 10.0


def test_anasyn_generated_signal(tmp_path, capsys):
    # a harmonic tone with a gliding f0 and an amplitude envelope, 1 s at 16 kHz
    fs = 16000
    t = np.arange(fs) / fs
    f0 = 120 + 40 * t
    phase = 2 * np.pi * np.cumsum(f0) / fs
    x = sum(np.sin(k * phase) / k for k in range(1, 30))
    x = 0.2 * x * np.hanning(fs) ** 0.3 + 1e-3 * np.random.default_rng(0).normal(size=fs)
    inp = tmp_path / "tone.wav"
    sf.write(str(inp), x, fs)
    rc, stdout, err = _run(capsys, inp, tmp_path / "tone_out.wav", "--json")
    assert rc == 0, err
    res = json.loads(stdout)
    assert res["mcd"] < 5.0 and res["vuv_error"] < 0.2
    assert res["f0_rmse"] < 10.0  # a clean tone keeps its f0


def test_refuses_to_overwrite_input(arctic, tmp_path, capsys):
    inp = tmp_path / "a.wav"
    shutil.copyfile(arctic, inp)
    before = inp.read_bytes()
    rc, stdout, err = _run(capsys, inp, tmp_path / "." / "a.wav")
    assert rc == 1
    assert "refusing to overwrite" in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert inp.read_bytes() == before


@pytest.mark.parametrize("make, out_name, fragment", [
    (lambda p: p.write_bytes(b"this is not audio" * 100), "o.wav", "not a readable audio file"),
    (lambda p: None, "o.wav", "no such file"),
    (lambda p: p.write_bytes(b""), "o.wav", "empty file"),
    (lambda p: sf.write(str(p), np.zeros(16000), 16000), "o.wav", "silent"),
    (lambda p: sf.write(str(p), 0.1 * np.ones(16000), 16000), "o.mp3", "must end in"),
])
def test_bad_inputs_one_line_errors(tmp_path, capsys, make, out_name, fragment):
    inp = tmp_path / "in.wav"
    make(inp)
    rc, stdout, err = _run(capsys, inp, tmp_path / out_name)
    assert rc == 1
    assert fragment in err and len(err.strip().splitlines()) == 1
    assert str(inp) in err or out_name in err
    assert not (tmp_path / out_name).exists()


def test_bad_f0_range(arctic, tmp_path, capsys):
    rc, _, err = _run(capsys, arctic, tmp_path / "o.wav", "--f0-floor", "300", "--f0-ceil", "100")
    assert rc == 1 and "f0_floor" in err and len(err.strip().splitlines()) == 1


@pytest.mark.data
def test_vcc2016_vocoder_floor(tmp_path, capsys):
    src = DATA / "vcc2016" / "vcc2016_training" / "SF1" / "100001.flac"
    if not src.is_file():
        pytest.skip(f"{src} not available")
    rc, stdout, err = _run(capsys, src, tmp_path / "sf1.wav", "--json")
    assert rc == 0, err
    res = json.loads(stdout)
    assert 1.0 < res["mcd"] < 3.5
    assert res["gv_distance"] < 0.1


def test_anasyn_batch_from_audio_and_dump_features(arctic, tmp_path, capsys):
    """A batch in one process: audio analysed, dump features (.npz) only synthesized
    (the same samples as from the audio), outputs that exist skipped, failures listed
    with exit code 1."""
    from vawgan.features import analyze_file, save_features

    feats, fs_orig = analyze_file(arctic)
    save_features(tmp_path / "feat.npz", feats, fs_orig=fs_orig)
    (tmp_path / "broken.wav").write_bytes(b"RIFF")
    lst = tmp_path / "in.list"
    lst.write_text(f"{arctic}\n{tmp_path / 'feat.npz'}\n")
    out = tmp_path / "out"
    rc, stdout, err = _run(capsys, "--in", lst, "--out", out, "--jobs", "2", "--no-metrics")
    assert rc == 0, err
    assert "2 written, 0 skipped (output exists), 0 failed" in stdout
    a, fa = sf.read(out / "arctic.wav")
    b, fb = sf.read(out / "feat.wav")
    assert fa == fb == 16000 and np.allclose(a, b, atol=1e-4)
    summary = json.loads((out / "anasyn.json").read_text())
    assert len(summary["done"]) == 2 and "mcd" not in summary["done"][0]
    lst.write_text(f"{arctic}\n{tmp_path / 'feat.npz'}\n{tmp_path / 'broken.wav'}\n")
    rc, stdout, err = _run(capsys, "--in", lst, "--out", out)
    assert rc == 1
    assert "0 written, 2 skipped (output exists), 1 failed" in stdout
    assert "broken.wav" in err
    # with metrics: the figures of each file
    rc, stdout, err = _run(capsys, "--in", lst, "--out", out, "--overwrite", "--json")
    assert rc == 1
    done = json.loads(stdout)["done"]
    assert len(done) == 2 and all(r["mcd"] < 6.0 for r in done)


@pytest.mark.parametrize("argv, fragment", [
    (["a.wav"], "give INPUT OUTPUT"),
    (["--in", "x.list"], "needs both --in and --out"),
    (["a.wav", "b.wav", "--out", "d"], "not both"),
])
def test_anasyn_mode_errors(tmp_path, capsys, argv, fragment):
    rc, stdout, err = _run(capsys, *argv)
    assert rc != 0 and fragment in err
