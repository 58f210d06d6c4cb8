"""Model bundle: round trip, conversion contract, rejection of bad files."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from vawgan.bundle import FORMAT_VERSION, load_bundle, save_bundle
from vawgan.config import Config
from vawgan.errors import BundleError
from vawgan.model import build_model

SPEAKERS = ["SF1", "TM1", "TF2"]


def _stats(seed=0):
    rng = np.random.default_rng(seed)
    return {s: {"mcep_mean": rng.normal(size=39).tolist(),
                "mcep_std": (0.5 + rng.random(39)).tolist()} for s in SPEAKERS}


@pytest.fixture
def saved(tmp_path):
    cfg = Config.from_dict({"model": {"hidden": 16, "z_dim": 4, "critic_hidden": 8}})
    torch.manual_seed(0)
    model = build_model(cfg.model, len(SPEAKERS))
    path = tmp_path / "m.pt"
    stats = _stats()
    save_bundle(path, state_dict=model.state_dict(), config=cfg, speakers=SPEAKERS,
                stats=stats, kind="vawgan", train_info={"step": 7})
    return path, model, cfg, stats


def test_round_trip(saved):
    path, model, cfg, stats = saved
    b = load_bundle(path)
    assert b.kind == "vawgan" and b.speakers == SPEAKERS
    assert b.config == cfg
    assert b.train_info["step"] == 7
    assert b.speaker_id("TF2") == 2
    for k, v in model.state_dict().items():
        assert torch.equal(b.model.state_dict()[k], v)
    st = b.stats["TM1"]
    mean = st["mcep_mean"] if isinstance(st, dict) else st.mcep_mean
    assert np.allclose(mean, stats["TM1"]["mcep_mean"])


def test_convert_body_contract(saved):
    path, model, cfg, stats = saved
    b = load_bundle(path)
    rng = np.random.default_rng(1)
    body = rng.normal(size=(50, 39))
    sm, ss = rng.normal(size=39), 0.5 + rng.random(39)
    y = b.convert_body(body, sm, ss, "TF2")
    assert y.shape == (50, 39) and y.dtype == np.float64
    # by hand: normalize with the source, posterior mean, decoder mean, target de-normalize
    x = torch.from_numpy(((body - sm) / ss).astype(np.float32))
    with torch.no_grad():
        mu, _ = model.encoder(x)
        out = model.decoder(mu, torch.full((50,), 2, dtype=torch.long))[0].double().numpy()
    want = out * np.asarray(stats["TF2"]["mcep_std"]) + np.asarray(stats["TF2"]["mcep_mean"])
    assert np.allclose(y, want, atol=1e-5)
    # frame-wise model: converting a prefix gives the prefix of the conversion
    assert np.allclose(b.convert_body(body[:10], sm, ss, "TF2"), y[:10], atol=1e-5)
    assert b.convert_body(body[:0], sm, ss, "TF2").shape == (0, 39)


def test_convert_body_argument_errors(saved):
    b = load_bundle(saved[0])
    ok = np.zeros(39), np.ones(39)
    with pytest.raises(ValueError, match=r"\(T, 39\)"):
        b.convert_body(np.zeros((5, 40)), *ok, "SF1")
    with pytest.raises(ValueError, match="source_mean"):
        b.convert_body(np.zeros((5, 39)), np.zeros(38), np.ones(39), "SF1")
    with pytest.raises(ValueError, match="> 0"):
        b.convert_body(np.zeros((5, 39)), np.zeros(39), np.zeros(39), "SF1")
    with pytest.raises(ValueError, match="NaN"):
        b.convert_body(np.full((5, 39), np.nan), *ok, "SF1")
    with pytest.raises(BundleError) as e:
        b.convert_body(np.zeros((5, 39)), *ok, "XX9")
    msg = str(e.value)
    assert "XX9" in msg and "SF1, TM1, TF2" in msg and str(saved[0]) in msg


def _one_line_error(path, match):
    with pytest.raises(BundleError, match=match) as e:
        load_bundle(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_rejects_bad_files(saved, tmp_path):
    path = saved[0]
    _one_line_error(tmp_path / "missing.pt", "no such")
    _one_line_error(tmp_path, "directory")
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _one_line_error(trunc, "corrupt or truncated")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00not a bundle at all" * 10)
    _one_line_error(junk, "corrupt or truncated")
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    _one_line_error(other, "not a vawgan model bundle")
    obj = torch.load(path, weights_only=True)
    obj["format_version"] = FORMAT_VERSION + 1
    future = tmp_path / "future.pt"
    torch.save(obj, future)
    _one_line_error(future, "newer")
    obj["format_version"] = FORMAT_VERSION
    obj["state_dict"] = {k: v for k, v in obj["state_dict"].items() if "encoder" not in k}
    torch.save(obj, tmp_path / "noenc.pt")
    _one_line_error(tmp_path / "noenc.pt", "weights do not match")
    obj = torch.load(path, weights_only=True)
    del obj["stats"]["TM1"]
    torch.save(obj, tmp_path / "nostats.pt")
    _one_line_error(tmp_path / "nostats.pt", "TM1")


def test_save_bundle_checks_and_atomic(saved, tmp_path):
    path, model, cfg, stats = saved
    with pytest.raises(ValueError, match="kind"):
        save_bundle(tmp_path / "x.pt", state_dict=model.state_dict(), config=cfg,
                    speakers=SPEAKERS, stats=stats, kind="gan")
    with pytest.raises(ValueError, match="statistics"):
        save_bundle(tmp_path / "x.pt", state_dict=model.state_dict(), config=cfg,
                    speakers=SPEAKERS + ["NEW"], stats=stats, kind="vae")
    assert not (tmp_path / "x.pt").exists()
    assert not list(tmp_path.glob(".*tmp*"))


def test_import_is_torch_free():
    code = "import sys, vawgan.bundle; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
