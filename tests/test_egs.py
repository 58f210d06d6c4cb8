"""The API examples in egs/ run and print sane numbers (as subprocesses, like a user)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EGS = Path(__file__).resolve().parents[1] / "egs"


def run_eg(name, *args, cwd, env=None, timeout=120):
    proc = subprocess.run([sys.executable, str(EGS / name), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_analysis_synthesis(tmp_path):
    out = tmp_path / "resynth.wav"
    res = json.loads(run_eg("analysis_synthesis.py", "--out", out, "--json", cwd=tmp_path).stdout)
    assert out.is_file() and out.stat().st_size > 10000
    assert res["n_frames"] > 100
    # the vocoder floor: small but not zero distortions
    assert 0.0 < res["gv_distance"] < 0.2
    assert 0.0 < res["ms_distance_db"] < 10.0
    assert 0.5 < res["mcd_db"] < 4.0
    assert res["f0_rmse_hz"] < 50.0


def test_analysis_synthesis_default_out(tmp_path):
    run_eg("analysis_synthesis.py", cwd=tmp_path)
    assert (tmp_path / "out.wav").is_file()


def test_metrics_on_your_features(tmp_path):
    res = json.loads(run_eg("metrics_on_your_features.py", "--json", cwd=tmp_path).stdout)
    assert res["gv_ratio_mean"] < 0.8  # the over-smoothed copy has a smaller GV
    assert res["gv_distance"] > 0.1 and res["ms_distance_db"] > 1.0 and res["mcd_db"] > 1.0
    assert res["list_equals_padded_batch"] is True
    assert res["gv_distance_after_gv_postfilter"] < 1e-9
    assert 0 < res["f0_rmse_hz"] < 20 and res["logf0_corr"] > 0.9 and res["vuv_error"] < 0.1


def test_metrics_on_your_npy(tmp_path):
    import numpy as np

    rng = np.random.default_rng(1)
    ref = rng.normal(size=(300, 25))
    np.save(tmp_path / "ref.npy", ref)
    np.save(tmp_path / "conv.npy", ref + 0.1 * rng.normal(size=ref.shape))
    res = json.loads(run_eg("metrics_on_your_features.py", "--conv", "conv.npy", "--ref",
                            "ref.npy", "--json", cwd=tmp_path).stdout)
    assert res["gv_distance"] < 0.05 and "f0_rmse_hz" not in res


def test_convert_with_pretrained(tmp_path):
    from vawgan.convert import DEFAULT_MODEL

    proc = run_eg("convert_with_pretrained.py", "--out", tmp_path / "conv.wav", cwd=tmp_path)
    if DEFAULT_MODEL.is_file():
        assert (tmp_path / "conv.wav").is_file()
    else:
        assert "No default model is installed" in proc.stdout
        assert not (tmp_path / "conv.wav").exists()


@pytest.mark.slow
def test_train_tiny_smoke(tmp_path):
    out = tmp_path / "tiny.wav"
    work = tmp_path / "work"
    proc = run_eg("train_tiny.py", "--json", "--out", out, "--workdir", work, cwd=tmp_path,
                  env={"VAWGAN_EGS_SMOKE": "1"}, timeout=300)
    res = json.loads(proc.stdout)
    assert res["steps"] == 50 and res["train_utts_per_speaker"] == 2
    assert out.is_file() and out.stat().st_size > 1000
    assert (work / "exp" / "vae.pt").is_file() and (work / "exp" / "vawgan.pt").is_file()
    assert (work / "stats.json").is_file()
    for system in ("vae", "vawgan"):
        m = res[system]
        assert set(m) >= {"gv_distance", "ms_distance", "mcd"}
        assert all(v == v and abs(v) < 1e4 for v in m.values())  # finite numbers


def test_enroll_new_voice_smoke(tmp_path):
    """ARCTIC slt enrolled into the bundled model, a VCC2016 sentence converted to it
    (says so and exits 0 without ../shared/data)."""
    proc = run_eg("enroll_new_voice.py", "--smoke", "--workdir", tmp_path / "w", "--out",
                  tmp_path / "slt.wav", cwd=tmp_path, timeout=300)
    if "Nothing to do" in proc.stdout:
        pytest.skip("no ../shared/data/cmu_arctic/slt")
    assert "enrolled SLT from 12 recordings" in proc.stdout
    assert "SLT" in proc.stdout.split("speakers now:")[1]
    assert (tmp_path / "w" / "SLT.pt").is_file() and (tmp_path / "slt.wav").stat().st_size > 10000
