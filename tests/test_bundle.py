"""Model bundle: round trip, conversion contract, the numpy networks against torch's,
the old torch.save format (read and upgrade), rejection of bad files."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

from vawgan.bundle import (FORMAT_VERSION, META, LEGACY_VERSION, arrays_sha256,
                           expected_shapes, load_bundle, save_bundle, upgrade_bundle)
from vawgan.config import Config
from vawgan.errors import BundleError
from vawgan.model import build_model

SPEAKERS = ["SF1", "TM1", "TF2"]


def _stats(seed=0):
    rng = np.random.default_rng(seed)
    return {s: {"mcep_mean": rng.normal(size=39).tolist(),
                "mcep_std": (0.5 + rng.random(39)).tolist()} for s in SPEAKERS}


def _full_stats(seed=0):
    """SpeakerStats-complete dicts (vectors, ms matrix, scalars)."""
    rng = np.random.default_rng(seed)
    return {s: {"n_utts": 3, "n_frames": 900, "mcep_mean": rng.normal(size=39).tolist(),
                "mcep_std": (0.5 + rng.random(39)).tolist(), "gv": rng.random(39).tolist(),
                "lf0_mean": 5.0 + rng.random(), "lf0_std": 0.2, "c0_mean": -3.0, "c0_std": 1.0,
                "ms": rng.normal(size=(129, 39)).tolist()} for s in SPEAKERS}


def _save_legacy(path, state_dict, cfg, stats, kind="vawgan", train_info=None, **override):
    """A format-1 bundle exactly as vawgan 0.1.0's save_bundle wrote it (one torch.save)."""
    obj = {"format": "vawgan-bundle", "format_version": LEGACY_VERSION, "kind": kind,
           "vawgan_version": "0.1.0", "config": cfg.to_dict(), "speakers": list(SPEAKERS),
           "stats": stats, "state_dict": {k: v.detach().cpu().clone() for k, v in state_dict.items()},
           "train_info": dict(train_info or {})}
    obj.update(override)
    torch.save(obj, path)


def _rewrite(src, dst, meta_fn=None, members_fn=None, fix_sha=False):
    """Copy a format-2 bundle, editing its metadata and/or members."""
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    meta = json.loads(members.pop(META))
    if meta_fn:
        meta_fn(meta)
    if members_fn:
        members_fn(members)
    if fix_sha:
        from io import BytesIO

        arrays = {n: np.lib.format.read_array(BytesIO(members[f"{n}.npy"])) for n in meta["arrays"]}
        meta["sha256"] = arrays_sha256(arrays)
    with zipfile.ZipFile(dst, "w") as z:
        z.writestr(META, json.dumps(meta))
        for n, data in members.items():
            z.writestr(n, data)
    return dst


@pytest.fixture
def saved(tmp_path):
    cfg = Config.from_dict({"model": {"hidden": 16, "z_dim": 4, "critic_hidden": 8, "context": 0}})
    torch.manual_seed(0)
    model = build_model(cfg.model, len(SPEAKERS))
    path = tmp_path / "m.pt"
    stats = _stats()
    save_bundle(path, state_dict=model.state_dict(), config=cfg, speakers=SPEAKERS,
                stats=stats, kind="vawgan", train_info={"step": 7, "loss": np.float32(1.5)})
    return path, model, cfg, stats


def test_round_trip(saved):
    path, model, cfg, stats = saved
    b = load_bundle(path)
    assert b.kind == "vawgan" and b.speakers == SPEAKERS and b.format_version == FORMAT_VERSION
    assert b.config == cfg
    assert b.train_info == {"step": 7, "loss": 1.5}
    assert b.speaker_id("TF2") == 2
    for k, v in model.state_dict().items():
        assert np.array_equal(b.state_dict[k], v.numpy()) and b.state_dict[k].dtype == np.float32
        assert torch.equal(b.model.state_dict()[k], v)
    st = b.stats["TM1"]
    mean = st["mcep_mean"] if isinstance(st, dict) else st.mcep_mean
    assert np.array_equal(mean, stats["TM1"]["mcep_mean"])
    # it is an ordinary npz: numpy opens it without vawgan
    with np.load(path) as z:
        assert np.array_equal(z["state_dict/encoder.net.0.weight"],
                              model.state_dict()["encoder.net.0.weight"].numpy())


def test_round_trip_full_speaker_stats(tmp_path):
    from vawgan.stats import SpeakerStats

    cfg = Config.from_dict({"model": {"hidden": 8, "z_dim": 2, "critic_hidden": 4}})
    stats = {s: SpeakerStats.from_dict(d) for s, d in _full_stats(3).items()}
    path = tmp_path / "full.pt"
    save_bundle(path, state_dict=build_model(cfg.model, 3).state_dict(), config=cfg,
                speakers=SPEAKERS, stats=stats, kind="vae")
    b = load_bundle(path)
    for s in SPEAKERS:
        assert isinstance(b.stats[s], SpeakerStats)
        assert b.stats[s].to_dict() == stats[s].to_dict()  # bit-exact, ms (129, 39) included


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


@pytest.mark.parametrize("variance", ["unit", "learned", "frame"])
@pytest.mark.parametrize("layers", [{"n_layers": 1, "leaky_slope": 0.05},
                                    {"n_layers": 3}, {"n_layers": 4, "leaky_slope": 0.0}])
def test_numpy_generator_equals_torch(tmp_path, variance, layers):
    cfg = Config.from_dict({"model": dict(hidden=64, z_dim=8, spk_dim=5, decoder_variance=variance,
                                          min_logvar=-3.0, context=0, **layers)})
    torch.manual_seed(len(variance) + layers["n_layers"])
    model = build_model(cfg.model, len(SPEAKERS))
    with torch.no_grad():  # away from the init: larger weights, biases, a varied logvar
        for name, p in model.named_parameters():
            p.mul_(1.5).add_(0.1 * torch.randn_like(p))
            if name == "decoder.logvar":
                p.copy_(torch.linspace(-30.0, 30.0, p.numel()))
    path = tmp_path / "g.pt"
    save_bundle(path, state_dict=model.state_dict(), config=cfg, speakers=SPEAKERS,
                stats=_stats(), kind="vawgan")
    g = load_bundle(path).generator
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 39)).astype(np.float32) * 2.0
    spk = rng.integers(0, len(SPEAKERS), size=300)
    xt, st = torch.from_numpy(x), torch.from_numpy(spk)
    with torch.no_grad():
        mu_t, lv_t = model.encoder(xt)
        z = mu_t + torch.randn_like(mu_t)  # the decoder on any latent, not only the mean
        mean_t, dlv_t = model.decoder(z, st)
        conv_t = model.convert(xt, torch.tensor(1))
    mu, lv = g.encode(x)
    mean, dlv = g.decode(z.numpy(), spk)
    for got, want in ((mu, mu_t), (lv, lv_t), (mean, mean_t), (dlv, dlv_t),
                      (g.convert(x, 1), conv_t)):
        want = want.numpy()
        assert got.shape == want.shape
        assert np.max(np.abs(got - want)) <= 1e-5
    assert np.max(np.abs(mean_t.numpy())) > 0.5  # not a trivially small output


@pytest.mark.parametrize("model_cfg", [{}, {"critic_arch": "conv", "critic_layers": 2},
                                       {"decoder_variance": "frame", "n_layers": 1},
                                       {"decoder_variance": "unit", "critic_layers": 1},
                                       {"context": 2}, {"context": 1, "critic_arch": "conv"}])
def test_expected_shapes_mirror_the_torch_model(model_cfg):
    cfg = Config.from_dict({"model": model_cfg}).model
    want = {k: tuple(v.shape) for k, v in build_model(cfg, 4, 39).state_dict().items()}
    assert expected_shapes(cfg, 4, 39) == want


@pytest.mark.parametrize("context", [1, 3])
def test_numpy_generator_equals_torch_with_context(tmp_path, context):
    from vawgan.bundle import context_windows as np_windows
    from vawgan.model import context_windows

    cfg = Config.from_dict({"model": dict(hidden=64, z_dim=8, spk_dim=5, context=context)})
    torch.manual_seed(context)
    model = build_model(cfg.model, len(SPEAKERS))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5).add_(0.1 * torch.randn_like(p))
    path = tmp_path / "c.pt"
    save_bundle(path, state_dict=model.state_dict(), config=cfg, speakers=SPEAKERS,
                stats=_stats(), kind="vawgan")
    g = load_bundle(path).generator
    assert g.context == context
    x = np.random.default_rng(0).normal(size=(200, 39)).astype(np.float32) * 2.0
    xt = torch.from_numpy(x)
    w = np_windows(x, context)
    assert w.shape == (200, (2 * context + 1) * 39)
    assert np.array_equal(w, context_windows(xt, context).numpy())
    with torch.no_grad():
        mu_t, lv_t = model.encoder(torch.from_numpy(w))
        conv_t = model.convert(xt, torch.tensor(2))
    mu, lv = g.encode(w)
    for got, want in ((mu, mu_t), (lv, lv_t), (g.convert(x, 2), conv_t)):
        want = want.numpy()
        assert got.shape == want.shape
        assert np.max(np.abs(got - want)) <= 1e-5


def test_round_trip_and_convert_body_with_context(tmp_path):
    from vawgan.model import context_windows

    cfg = Config.from_dict({"model": {"hidden": 16, "z_dim": 4, "critic_hidden": 8,
                                      "context": 2}})
    torch.manual_seed(0)
    model = build_model(cfg.model, len(SPEAKERS))
    stats = _stats()
    path = tmp_path / "ctx.pt"
    save_bundle(path, state_dict=model.state_dict(), config=cfg, speakers=SPEAKERS,
                stats=stats, kind="vae")
    b = load_bundle(path)
    assert b.config == cfg and b.config.model.context == 2
    for k, v in model.state_dict().items():
        assert np.array_equal(b.state_dict[k], v.numpy())
    assert b.state_dict["encoder.net.0.weight"].shape == (16, 5 * 39)
    rng = np.random.default_rng(1)
    body = rng.normal(size=(50, 39))
    sm, ss = rng.normal(size=39), 0.5 + rng.random(39)
    y = b.convert_body(body, sm, ss, "TF2")
    assert y.shape == (50, 39) and y.dtype == np.float64
    # by hand: normalize, windows of the whole utterance (edge-replicated), encode, decode
    x = torch.from_numpy(((body - sm) / ss).astype(np.float32))
    with torch.no_grad():
        mu, _ = model.encoder(context_windows(x, 2))
        out = model.decoder(mu, torch.full((50,), 2, dtype=torch.long))[0].double().numpy()
    want = out * np.asarray(stats["TF2"]["mcep_std"]) + np.asarray(stats["TF2"]["mcep_mean"])
    assert np.allclose(y, want, atol=1e-5)
    # a prefix converts the same except its last k frames, which see replicated edges
    yp = b.convert_body(body[:10], sm, ss, "TF2")
    assert np.allclose(yp[:8], y[:8], atol=1e-5) and not np.allclose(yp[8:], y[8:10])
    assert b.convert_body(body[:1], sm, ss, "TF2").shape == (1, 39)
    assert b.convert_body(body[:0], sm, ss, "TF2").shape == (0, 39)
    # re-saved (bundle-upgrade path) it stays a context model
    assert load_bundle(upgrade_bundle(path, tmp_path / "re.pt")).config.model.context == 2


def test_bundle_without_context_key_loads(saved, tmp_path):
    """Bundles written before model.context existed load as frame-wise models."""
    path, model, cfg, stats = saved

    def drop(meta):
        del meta["config"]["model"]["context"]

    old = _rewrite(path, tmp_path / "old.pt", meta_fn=drop)
    b = load_bundle(old)
    assert b.config.model.context == 0
    body = np.random.default_rng(2).normal(size=(20, 39))
    m, s = np.zeros(39), np.ones(39)
    assert np.array_equal(b.convert_body(body, m, s, "TM1"),
                          load_bundle(path).convert_body(body, m, s, "TM1"))
    legacy_cfg = cfg.to_dict()
    del legacy_cfg["model"]["context"]
    _save_legacy(tmp_path / "v1.pt", model.state_dict(), cfg, stats, config=legacy_cfg)
    assert load_bundle(tmp_path / "v1.pt").config.model.context == 0


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


# ----------------------------------------------------------------------------- format 1
def test_legacy_torch_bundle_loads_converts_and_upgrades(saved, tmp_path, capsys):
    path, model, cfg, _ = saved
    stats = _full_stats(1)
    old = tmp_path / "old.pt"
    _save_legacy(old, model.state_dict(), cfg, stats, kind="vae", train_info={"step": 40000})
    b1 = load_bundle(old)
    assert b1.format_version == 1 and b1.kind == "vae" and b1.train_info == {"step": 40000}
    rng = np.random.default_rng(2)
    body, sm, ss = rng.normal(size=(40, 39)), rng.normal(size=39), 0.5 + rng.random(39)
    y1 = b1.convert_body(body, sm, ss, "TM1")
    new = upgrade_bundle(old, tmp_path / "new.pt")
    b2 = load_bundle(new)
    assert b2.format_version == FORMAT_VERSION and b2.kind == "vae"
    assert b2.train_info == {"step": 40000, "upgraded_from_format": 1}
    assert b2.config == b1.config and b2.speakers == b1.speakers
    for s in SPEAKERS:
        assert b2.stats[s].to_dict() == b1.stats[s].to_dict()
    for k, v in b1.state_dict.items():
        assert np.array_equal(b2.state_dict[k], v)
    np.testing.assert_array_equal(b2.convert_body(body, sm, ss, "TM1"), y1)
    # the command: in place
    from vawgan.cli import main

    assert main(["bundle-upgrade", str(old)]) == 0
    assert "(format 1) -> " in capsys.readouterr().out
    assert load_bundle(old).format_version == FORMAT_VERSION
    assert not list(tmp_path.glob(".*tmp*"))


def test_load_and_convert_without_torch(saved, tmp_path):
    """Format 2: loading, converting and rejecting bad files never import torch."""
    path = saved[0]
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(path.read_bytes()[:-200])
    script = tmp_path / "load.py"
    script.write_text(
        "import sys\nimport numpy as np\nfrom vawgan.bundle import load_bundle\n"
        "from vawgan.errors import BundleError\n"
        f"b = load_bundle({str(path)!r})\n"
        "y = b.convert_body(np.zeros((5, 39)), np.zeros(39), np.ones(39), 'TM1')\n"
        f"try:\n    load_bundle({str(trunc)!r})\nexcept BundleError:\n    pass\n"
        "print(y.shape, 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(5, 39) False"


# ----------------------------------------------------------------------------- bad files
def _one_line_error(path, match):
    with pytest.raises(BundleError, match=match) as e:
        load_bundle(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_rejects_bad_files(saved, tmp_path):
    path = saved[0]
    _one_line_error(tmp_path / "missing.pt", "no such")
    _one_line_error(tmp_path, "directory")
    data = path.read_bytes()
    for n in (len(data) // 2, len(data) - 30, 100, 3):
        trunc = tmp_path / f"trunc{n}.pt"
        trunc.write_bytes(data[:n])
        _one_line_error(trunc, "corrupt or truncated")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00not a bundle at all" * 10)
    _one_line_error(junk, "corrupt or truncated")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    _one_line_error(empty, "corrupt or truncated")
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    _one_line_error(other, "not a vawgan model bundle")
    npz = tmp_path / "other.npz"
    np.savez(npz, weights=np.zeros(3))
    _one_line_error(npz, "not a vawgan model bundle")

    def edit(name, **kw):
        return _rewrite(path, tmp_path / name, **kw)

    _one_line_error(edit("future.pt", meta_fn=lambda m: m.update(format_version=FORMAT_VERSION + 1)),
                    "newer")
    _one_line_error(edit("nover.pt", meta_fn=lambda m: m.pop("format_version")),
                    "no valid format_version")
    _one_line_error(edit("notb.pt", meta_fn=lambda m: m.update(format="something-else")),
                    "not a vawgan model bundle")
    _one_line_error(edit("nokind.pt", meta_fn=lambda m: m.update(kind="gan")), "unknown bundle kind")
    _one_line_error(edit("nospk.pt", meta_fn=lambda m: m.update(speakers=[])), "no speakers")
    _one_line_error(edit("nostats.pt", meta_fn=lambda m: m["stats"].pop("TM1")), "TM1")
    _one_line_error(edit("nocfg.pt", meta_fn=lambda m: m.update(config={"model": {"hidden": -1}})),
                    "config is invalid")

    def drop_encoder(m):
        m["arrays"] = [n for n in m["arrays"] if "encoder" not in n]

    _one_line_error(edit("noenc.pt", meta_fn=drop_encoder, fix_sha=True), "weights do not match")

    def wider(m):
        m["config"]["model"]["hidden"] = 32

    _one_line_error(edit("wide.pt", meta_fn=wider), "weights do not match")
    _one_line_error(edit("nomember.pt", members_fn=lambda d: d.pop("state_dict/decoder.embed.weight.npy")),
                    "no state_dict/decoder.embed.weight.npy")

    def tamper(d):  # a valid npy with other values: only the sha256 notices
        from io import BytesIO

        key = "state_dict/encoder.net.0.weight.npy"
        a = np.lib.format.read_array(BytesIO(d[key]))
        a[0, 0] += 1.0
        buf = BytesIO()
        np.lib.format.write_array(buf, a)
        d[key] = buf.getvalue()

    _one_line_error(edit("tampered.pt", members_fn=tamper), "sha256")
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members[META] = members[META][:-10]
    badjson = tmp_path / "badjson.pt"
    with zipfile.ZipFile(badjson, "w") as z:
        for n, d in members.items():
            z.writestr(n, d)
    _one_line_error(badjson, "corrupt")
    # a flipped byte inside a stored array: the zip CRC catches it
    flipped = tmp_path / "flipped.pt"
    raw = bytearray(data)
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("state_dict/decoder.net.0.weight.npy")
    raw[info.header_offset + 30 + len(info.filename) + len(info.extra) + 200] ^= 0x55
    flipped.write_bytes(bytes(raw))
    _one_line_error(flipped, "corrupt")


def test_rejects_bad_legacy_files(saved, tmp_path):
    path, model, cfg, stats = saved
    sd = model.state_dict()
    good = tmp_path / "good.pt"
    _save_legacy(good, sd, cfg, stats)
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    _one_line_error(trunc, "corrupt or truncated")
    _save_legacy(tmp_path / "future.pt", sd, cfg, stats, format_version=FORMAT_VERSION + 1)
    _one_line_error(tmp_path / "future.pt", "newer")
    _save_legacy(tmp_path / "noenc.pt", {k: v for k, v in sd.items() if "encoder" not in k},
                 cfg, stats)
    _one_line_error(tmp_path / "noenc.pt", "weights do not match")
    _save_legacy(tmp_path / "nostats.pt", sd, cfg, {k: v for k, v in stats.items() if k != "TM1"})
    _one_line_error(tmp_path / "nostats.pt", "TM1")
    _save_legacy(tmp_path / "nosd.pt", sd, cfg, stats)
    obj = torch.load(tmp_path / "nosd.pt", weights_only=True)
    del obj["state_dict"]
    torch.save(obj, tmp_path / "nosd.pt")
    _one_line_error(tmp_path / "nosd.pt", "lacks 'state_dict'")


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
