"""Model bundle: round trip, the ONNX conversion graph against the torch model (every
decoder variance, context and critic architecture), the sha256 over every member,
rejection of bad files, torch-free loading."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

from vawgan.bundle import (DIGEST, FORMAT_VERSION, GRAPH, MAX_BYTES, META, load_bundle,
                           members_sha256)
from vawgan.export import save_bundle
from vawgan.config import Config
from vawgan.errors import BundleError
from vawgan.model import build_model

SPEAKERS = ["SF1", "TM1", "TF2"]


def _stats(seed=0):
    """SpeakerStats-complete dicts (vectors, ms matrix, scalars)."""
    rng = np.random.default_rng(seed)
    return {s: {"n_utts": 3, "n_frames": 900, "mcep_mean": rng.normal(size=39).tolist(),
                "mcep_std": (0.5 + rng.random(39)).tolist(), "gv": rng.random(39).tolist(),
                "lf0_mean": 5.0 + rng.random(), "lf0_std": 0.2, "c0_mean": -3.0, "c0_std": 1.0,
                "ms": rng.normal(size=(129, 39)).tolist()} for s in SPEAKERS}


def _members(path):
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def _write(dst, members, fix_sha=False):
    members = dict(members)
    if fix_sha:
        members.pop(DIGEST, None)
        members[DIGEST] = (members_sha256(members.items()) + "\n").encode()
    with zipfile.ZipFile(dst, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    return dst


def _rewrite(src, dst, meta_fn=None, members_fn=None, fix_sha=True):
    """Copy a bundle, editing its metadata and/or members (by default re-signed, so that
    the check behind the sha256 is what gets tested)."""
    members = _members(src)
    if meta_fn:
        meta = json.loads(members[META])
        meta_fn(meta)
        members[META] = json.dumps(meta).encode()
    if members_fn:
        members_fn(members)
    return _write(dst, members, fix_sha)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    cfg = Config.from_dict({"model": {"hidden": 16, "z_dim": 4, "critic_hidden": 8, "context": 0}})
    torch.manual_seed(0)
    model = build_model(cfg.model, len(SPEAKERS)).eval()
    path = tmp_path_factory.mktemp("bundle") / "m.pt"
    stats = _stats()
    save_bundle(path, model=model, config=cfg, speakers=SPEAKERS, stats=stats, kind="vawgan",
                train_info={"step": 7, "loss": np.float32(1.5), "precision": "fp32"})
    return path, model, cfg, stats


def test_round_trip(saved):
    from vawgan.stats import SpeakerStats

    path, model, cfg, stats = saved
    b = load_bundle(path)
    assert b.kind == "vawgan" and b.speakers == SPEAKERS and b.format_version == FORMAT_VERSION
    assert b.config == cfg
    assert b.train_info == {"step": 7, "loss": 1.5, "precision": "fp32"}
    assert b.speaker_id("TF2") == 2
    for k, v in model.state_dict().items():
        assert np.array_equal(b.state_dict[k], v.numpy()) and b.state_dict[k].dtype == np.float32
        assert torch.equal(b.model.state_dict()[k], v)
    for s in SPEAKERS:
        assert isinstance(b.stats[s], SpeakerStats)
        assert b.stats[s].to_dict() == SpeakerStats.from_dict(stats[s]).to_dict()  # bit-exact
    mean, std = b.mcep_stats("TM1")
    assert np.array_equal(mean, stats["TM1"]["mcep_mean"])
    assert np.array_equal(std, stats["TM1"]["mcep_std"])
    names = set(_members(path))
    assert {META, GRAPH, DIGEST} <= names


def test_round_trip_of_the_vocoder_gv_ratio(saved, tmp_path):
    """A speaker's optional ``gv_resynth_ratio`` is stored and read back; speakers
    without it load without it."""
    path, model, cfg, stats = saved
    stats = dict(stats, TM1=dict(stats["TM1"], gv_resynth_ratio=np.linspace(0.9, 1.1, 39)))
    p = tmp_path / "ratio.pt"
    save_bundle(p, model=model, config=cfg, speakers=SPEAKERS, stats=stats, kind="vawgan")
    b = load_bundle(p)
    np.testing.assert_array_equal(b.stats["TM1"].gv_resynth_ratio, np.linspace(0.9, 1.1, 39))
    assert b.stats["SF1"].gv_resynth_ratio is None


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
    assert b.convert_body(body[:1], sm, ss, "TF2").shape == (1, 39)
    assert b.convert_body(body[:0], sm, ss, "TF2").shape == (0, 39)


MODEL_VARIANTS = [
    {"decoder_variance": "unit", "context": 0},
    {"decoder_variance": "learned", "context": 0, "n_layers": 1, "leaky_slope": 0.05},
    {"decoder_variance": "frame", "context": 0, "n_layers": 2, "min_logvar": -3.0},
    {"decoder_variance": "learned", "context": 1},
    {"decoder_variance": "frame", "context": 3, "critic_arch": "conv", "critic_layers": 2},
    {"decoder_variance": "unit", "context": 2, "z_dim": 7, "spk_dim": 5},
    # the per-speaker bias of the decoder's first layer (vawgan enroll --adapt bias)
    {"decoder_variance": "learned", "context": 2, "spk_bias": True},
    {"arch": "conv", "context": 1, "segment": 8, "spk_bias": True},
]


@pytest.mark.parametrize("model_cfg", MODEL_VARIANTS, ids=lambda d: "-".join(
    f"{k}={v}" for k, v in d.items()))
def test_onnx_graph_equals_torch(tmp_path, model_cfg):
    """onnxruntime's conversion equals the torch model's VAWGAN.convert within 1e-5, for
    every target, utterance lengths around the context window included."""
    cfg = Config.from_dict({"model": dict({"hidden": 24, "z_dim": 5, "critic_hidden": 8},
                                          **model_cfg)})
    torch.manual_seed(3)
    model = build_model(cfg.model, len(SPEAKERS)).eval()
    with torch.no_grad():  # non-trivial values everywhere (logvar, embeddings)
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    path = tmp_path / "v.pt"
    save_bundle(path, model=model, config=cfg, speakers=SPEAKERS, stats=_stats(1), kind="vae")
    b = load_bundle(path)
    rng = np.random.default_rng(4)
    k = cfg.model.context
    for T in sorted({1, 2, k, k + 1, 2 * k + 1, 2 * k + 2, 57} - {0}):
        x = rng.normal(size=(T, 39)).astype(np.float32)
        for tid in range(len(SPEAKERS)):
            want = model.convert(torch.from_numpy(x), torch.tensor(tid)).numpy()
            got = b.run_graph(x, tid)
            assert got.shape == (T, 39)
            np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


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
    with pytest.raises(ValueError, match="threads"):
        load_bundle(saved[0], threads=0)


def test_load_and_convert_without_torch(saved, tmp_path):
    """Loading, converting and rejecting bad files import neither torch nor pysptk."""
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
        "print(y.shape, 'torch' in sys.modules, 'pysptk' in sys.modules)\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(5, 39) False False"


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
        _one_line_error(trunc, "corrupt or truncated|not a zip")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00not a bundle at all" * 10)
    _one_line_error(junk, "not a vawgan model bundle")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    _one_line_error(empty, "not a vawgan model bundle")
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)  # a torch file: a zip without our header
    _one_line_error(other, "not a vawgan model bundle")
    npz = tmp_path / "other.npz"
    np.savez(npz, weights=np.zeros(3))
    _one_line_error(npz, "not a vawgan model bundle")

    def edit(name, **kw):
        return _rewrite(path, tmp_path / name, **kw)

    _one_line_error(edit("future.pt", meta_fn=lambda m: m.update(format_version=FORMAT_VERSION + 1)),
                    "newer")
    _one_line_error(edit("older.pt", meta_fn=lambda m: m.update(format_version=2)), "older vawgan")
    _one_line_error(edit("nover.pt", meta_fn=lambda m: m.pop("format_version")),
                    "no valid format_version")
    _one_line_error(edit("notb.pt", meta_fn=lambda m: m.update(format="something-else")),
                    "not a vawgan model bundle")
    _one_line_error(edit("nokind.pt", meta_fn=lambda m: m.update(kind="gan")), "unknown bundle kind")
    _one_line_error(edit("nospk.pt", meta_fn=lambda m: m.update(speakers=[])), "no speakers")
    _one_line_error(edit("dupspk.pt", meta_fn=lambda m: m.update(speakers=["SF1", "SF1", "TF2"])),
                    "not unique")
    _one_line_error(edit("nostats.pt", meta_fn=lambda m: m["stats"].pop("TM1")), "TM1")
    _one_line_error(edit("nocfg.pt", meta_fn=lambda m: m.update(config={"model": {"hidden": -1}})),
                    "config is invalid")
    _one_line_error(edit("nograph.pt", members_fn=lambda d: d.pop(GRAPH)), "no model.onnx")
    _one_line_error(edit("badgraph.pt", members_fn=lambda d: d.update({GRAPH: b"\x08\x07junk"})),
                    "corrupt model graph")
    _one_line_error(edit("nosig.pt", meta_fn=lambda m: m.update(graph={"inputs": ["a"]})),
                    "signature")
    _one_line_error(edit("nomember.pt",
                         members_fn=lambda d: d.pop("state_dict/decoder.embed.weight.npy")),
                    "no state_dict/decoder.embed.weight.npy")
    _one_line_error(edit("nodigest.pt", members_fn=lambda d: d.pop(DIGEST), fix_sha=False),
                    "no sha256")
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members[META] = members[META][:-10]
    _one_line_error(_write(tmp_path / "badjson.pt", members, fix_sha=True), "corrupt")
    # a flipped byte inside a stored member: the zip CRC catches it
    flipped = tmp_path / "flipped.pt"
    raw = bytearray(data)
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("state_dict/decoder.net.0.weight.npy")
    raw[info.header_offset + 30 + len(info.filename) + len(info.extra) + 40] ^= 0x55
    flipped.write_bytes(bytes(raw))
    _one_line_error(flipped, "corrupt")


def test_sha256_covers_every_member_json_included(saved, tmp_path):
    """An edit to any member, the JSON metadata included, is caught unless re-signed."""
    path = saved[0]
    members = _members(path)
    digest = members[DIGEST].decode().strip()
    assert digest == members_sha256((n, d) for n, d in members.items() if n != DIGEST)
    assert len(digest) == 64 and set(digest) <= set("0123456789abcdef")

    def lf0(m):  # the edit that crashed the process in native code (issue 11)
        m["stats"]["TM1"]["lf0_mean"] = 50
    _one_line_error(_rewrite(path, tmp_path / "lf0.pt", meta_fn=lf0, fix_sha=False), "sha256")
    for name in members:
        if name == DIGEST:
            continue
        edited = dict(members)
        data = bytearray(edited[name])
        data[-1] ^= 0x01
        edited[name] = bytes(data)
        _one_line_error(_write(tmp_path / f"e{hashlib.md5(name.encode()).hexdigest()}.pt",
                               edited), "sha256")


def test_rejects_bad_statistics(saved, tmp_path):
    """Every statistic is checked at load (finite, std and GV > 0, shapes, pitch range)."""
    path = saved[0]

    def stat_edit(name, fn):
        return _rewrite(path, tmp_path / name, meta_fn=fn)

    def set_meta(key, value):
        def fn(m):
            m["stats"]["TM1"][key] = value
        return fn

    _one_line_error(stat_edit("lf0.pt", set_meta("lf0_mean", 50)), "lf0_mean")
    _one_line_error(stat_edit("lf0nan.pt", set_meta("lf0_mean", "nan")), "lf0_mean")
    _one_line_error(stat_edit("lf0std.pt", set_meta("lf0_std", 0.0)), "standard deviations")

    def array_edit(name, field, value):
        def fn(d):
            from io import BytesIO

            buf = BytesIO()
            np.lib.format.write_array(buf, np.asarray(value, dtype=np.float64))
            d[f"stats/1/{field}.npy"] = buf.getvalue()
        return _rewrite(path, tmp_path / name, members_fn=fn)

    _one_line_error(array_edit("gvnan.pt", "gv", np.full(39, np.nan)), "gv")
    _one_line_error(array_edit("gvshape.pt", "gv", np.ones(38)), "gv")
    _one_line_error(array_edit("stdnan.pt", "mcep_std", np.full(39, np.nan)), "mcep_std")
    _one_line_error(array_edit("dims.pt", "mcep_mean", np.zeros(38)), "statistics")


def test_rejects_ms_fft_that_the_statistics_do_not_fit(saved, tmp_path):
    """stats.ms_fft >= 2 and equal to the FFT the stored modulation spectra were made
    with, at load: else conversion wrote its output, then failed with a traceback in
    the MS metrics (issue 11)."""
    def fft(n):
        def fn(m):
            m["config"].setdefault("stats", {})["ms_fft"] = n
        return fn

    for n in (0, 1, -256):
        _one_line_error(_rewrite(saved[0], tmp_path / f"fft{n}.pt", meta_fn=fft(n)),
                        r"config is invalid \(stats.ms_fft")
    _one_line_error(_rewrite(saved[0], tmp_path / "fft512.pt", meta_fn=fft(512)),
                    "ms has 129 bins, stats.ms_fft 512 needs 257")
    path, model, cfg, stats = saved
    cfg512 = Config.from_dict({**cfg.to_dict(), "stats": {"ms_fft": 512}})
    with pytest.raises(ValueError, match="ms has 129 bins"):  # no bundle that cannot load
        save_bundle(tmp_path / "x.pt", model=model, config=cfg512, speakers=SPEAKERS,
                    stats=stats, kind="vae")
    assert not (tmp_path / "x.pt").exists()


def test_expanding_bundle_rejected_before_it_is_read(tmp_path):
    """A small zip whose members expand past MAX_BYTES (a 400 MB bomb of 0.4 MB) is
    refused from the sizes its directory declares, without reading a member."""
    import tracemalloc

    bomb = tmp_path / "bomb.pt"
    block = bytes(2**20)
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open("state_dict/big.npy", "w", force_zip64=True) as f:
            for _ in range(MAX_BYTES // 2**20 + 16):
                f.write(block)
        z.writestr(META, b"{}")
    assert bomb.stat().st_size < 2 * 2**20
    tracemalloc.start()
    try:
        _one_line_error(bomb, r"expand to \d+ MiB \(at most 256 MiB\)")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"{peak / 2**20:.0f} MiB allocated while rejecting it"


def test_rejects_oversized_members(saved, tmp_path, monkeypatch):
    import vawgan.bundle as bundle_mod

    monkeypatch.setattr(bundle_mod, "MAX_BYTES", saved[0].stat().st_size // 2)
    _one_line_error(saved[0], "MiB")
    assert MAX_BYTES >= 64 * 2**20  # room for a real model


def test_weights_that_do_not_match_the_config(saved, tmp_path):
    def wider(m):
        m["config"]["model"]["hidden"] = 32

    b = load_bundle(_rewrite(saved[0], tmp_path / "wide.pt", meta_fn=wider))
    with pytest.raises(BundleError, match="weights do not match"):
        b.model  # noqa: B018 - the torch module is built on first use


def test_save_bundle_checks_and_atomic(saved, tmp_path):
    path, model, cfg, stats = saved
    with pytest.raises(ValueError, match="kind"):
        save_bundle(tmp_path / "x.pt", model=model, config=cfg, speakers=SPEAKERS, stats=stats,
                    kind="gan")
    with pytest.raises(ValueError, match="speakers"):
        save_bundle(tmp_path / "x.pt", model=model, config=cfg, speakers=SPEAKERS + ["NEW"],
                    stats=stats, kind="vae")
    with pytest.raises(ValueError, match="statistics"):
        save_bundle(tmp_path / "x.pt", model=model, config=cfg, speakers=["SF1", "TM1", "NEW"],
                    stats=stats, kind="vae")
    assert not (tmp_path / "x.pt").exists()
    assert not list(tmp_path.glob(".*tmp*"))


def test_import_is_torch_free():
    code = "import sys, vawgan.bundle; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_background_session(saved, tmp_path):
    """background=True builds the session in a thread: same conversion, and a bad graph is
    still a one-line BundleError, at the first use."""
    path = saved[0]
    x = np.random.default_rng(5).normal(size=(9, 39)).astype(np.float32)
    b = load_bundle(path, background=True)
    np.testing.assert_array_equal(b.run_graph(x, 1), load_bundle(path).run_graph(x, 1))
    bad = _rewrite(path, tmp_path / "badgraph.pt",
                   members_fn=lambda d: d.update({GRAPH: b"\x08\x07junk"}))
    b = load_bundle(bad, background=True)
    with pytest.raises(BundleError, match="corrupt model graph") as e:
        b.run_graph(x, 0)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)


def test_bundle_written_before_spk_bias_loads(tmp_path):
    """A bundle whose config has no model.spk_bias (all written before it existed) loads
    as spk_bias false: same weights, same graph. (The shipped model, trained with the
    key present since 2026-12-08, has it off.)"""
    from vawgan.convert import DEFAULT_MODEL

    if DEFAULT_MODEL.exists():
        b = load_bundle(DEFAULT_MODEL)
        assert not json.loads(_members(DEFAULT_MODEL)[META])["config"]["model"].get("spk_bias")
        assert b.config.model.spk_bias is False and "decoder.spk_bias.weight" not in b.state_dict
        assert b.model.decoder.spk_bias is None
    cfg = Config.from_dict({"model": {"hidden": 12, "z_dim": 4, "critic_hidden": 8}})
    torch.manual_seed(0)
    path = tmp_path / "old.pt"
    save_bundle(path, model=build_model(cfg.model, len(SPEAKERS)), config=cfg,
                speakers=SPEAKERS, stats=_stats(), kind="vawgan")
    m = _members(path)  # rewrite it as an old writer did: no spk_bias key
    meta = json.loads(m[META])
    del meta["config"]["model"]["spk_bias"]
    m[META] = json.dumps(meta).encode()
    del m[DIGEST]
    old = tmp_path / "old2.pt"
    with zipfile.ZipFile(old, "w") as z:
        for n, data in m.items():
            z.writestr(n, data)
        z.writestr(DIGEST, members_sha256(list(m.items())) + "\n")
    a, b = load_bundle(path), load_bundle(old)
    assert b.config.model.spk_bias is False
    x = np.random.default_rng(0).normal(size=(9, 39)).astype(np.float32)
    assert np.array_equal(a.run_graph(x, 1), b.run_graph(x, 1))
    with torch.no_grad():
        np.testing.assert_allclose(b.model.convert(torch.from_numpy(x), torch.tensor(1)).numpy(),
                                   b.run_graph(x, 1), atol=1e-5)
