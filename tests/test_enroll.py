"""vawgan enroll: a new target speaker learned as one decoder embedding row (and one
critic row, adversarially), the rest of the network and the base speakers unchanged;
resumable across both phases; bad input refused clearly."""

from __future__ import annotations


import numpy as np
import pytest
import soundfile as sf
import torch

pysptk = pytest.importorskip("pysptk")

from vawgan.bundle import load_bundle  # noqa: E402
from vawgan.cli import main  # noqa: E402
from vawgan.config import Config  # noqa: E402
from vawgan.enroll import enroll  # noqa: E402
from vawgan.errors import InputsError, VawganError  # noqa: E402
from vawgan.features import analyze_file, synthesize  # noqa: E402

FS = 16000


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny bundle (speakers SRC, TGT) and a new voice: 4 ARCTIC clips with f0 x1.4 and
    a tilted envelope, resynthesized."""
    from vawgan.export import save_bundle
    from vawgan.model import build_model
    from vawgan.stats import compute_speaker_stats

    root = tmp_path_factory.mktemp("enroll")
    x, fs = sf.read(pysptk.util.example_audio_file())
    assert fs == FS
    (root / "base").mkdir()
    (root / "new").mkdir()
    feats = []
    for i in range(4):
        seg = x[int((0.2 + 0.4 * i) * fs): int((1.4 + 0.4 * i) * fs)]
        sf.write(root / "base" / f"b{i}.wav", seg, fs)
        f, _ = analyze_file(root / "base" / f"b{i}.wav")
        feats.append(f)
        mc = f.mcep.copy()
        mc[:, 1] += 0.4
        sf.write(root / "new" / f"n{i}.wav", 0.8 * synthesize(f, f0=f.f0 * 1.4, mcep=mc), fs)
    cfg = Config.from_dict({"model": {"z_dim": 4, "hidden": 16, "n_layers": 1, "spk_dim": 3,
                                      "critic_hidden": 8, "critic_layers": 1}})
    st = compute_speaker_stats(feats, cfg.feature.silence_db, cfg.stats.ms_fft)
    torch.manual_seed(0)
    path = root / "base.pt"
    save_bundle(path, model=build_model(cfg.model, 2, 39), config=cfg, speakers=["SRC", "TGT"],
                stats={"SRC": st, "TGT": st}, kind="vawgan", train_info={"steps": 0})
    return root, path


def _files(root):
    return sorted((root / "new").glob("*.wav"))


def test_enroll_learns_one_row_and_keeps_the_base(setup, tmp_path):
    root, base_path = setup
    base = load_bundle(base_path)
    info = enroll(base, "NEW", _files(root), tmp_path / "new.pt", tmp_path / "work",
                  steps=60, adv_steps=20, lr=0.05, min_speech=2.0, progress=False)
    assert info["n_files"] == 4 and not info["failed"]
    assert info["steps"] == 60 and info["adv_steps"] == 20 and np.isfinite(info["wdist_end"])
    assert info["nll_rec"] < info["nll_start"] and np.isfinite(info["nll_end"])
    assert info["f0_range"] is not None and info["f0_range"][0] < info["f0_range"][1]
    new = load_bundle(tmp_path / "new.pt")
    assert new.speakers == ["SRC", "TGT", "NEW"]
    assert new.train_info["enrolled"][0]["name"] == "NEW" and new.train_info["steps"] == 0
    assert new.train_info["enrolled"][0]["f0_range"] == info["f0_range"]  # kept in the bundle
    sd0, sd1 = base.state_dict, new.state_dict
    for k, v in sd0.items():
        if k.endswith("embed.weight"):
            assert np.array_equal(sd1[k][:2], v), k  # base rows untouched
        else:
            assert np.array_equal(sd1[k], v), k  # every other weight untouched
    row0 = sd0["decoder.embed.weight"].mean(axis=0)  # the initial row: mean of the base
    assert not np.allclose(sd1["decoder.embed.weight"][2], row0)
    # the critic's new row was trained (from the mean of the base rows)
    assert not np.allclose(sd1["critic.embed.weight"][2],
                           sd0["critic.embed.weight"].mean(axis=0))
    # the new speaker's statistics are its own: f0 x1.4 -> lf0 mean + log 1.4
    assert new.stats["NEW"].lf0_mean - new.stats["SRC"].lf0_mean == pytest.approx(
        np.log(1.4), abs=0.05)
    # the base speakers convert exactly as before, the new one differently
    f, _ = analyze_file(root / "base" / "b0.wav")
    st = new.stats["SRC"]
    for t in ("SRC", "TGT"):
        a = base.convert_body(f.body, st.mcep_mean, st.mcep_std, t)
        b = new.convert_body(f.body, st.mcep_mean, st.mcep_std, t)
        np.testing.assert_allclose(a, b, atol=1e-5)
    c = new.convert_body(f.body, st.mcep_mean, st.mcep_std, "NEW")
    assert not np.allclose(c, new.convert_body(f.body, st.mcep_mean, st.mcep_std, "TGT"))


def test_enroll_resumes_exactly(setup, tmp_path):
    root, base_path = setup
    base = load_bundle(base_path)
    kw = dict(lr=0.05, min_speech=2.0, progress=False)
    enroll(base, "NEW", _files(root), tmp_path / "a.pt", tmp_path / "wa", steps=200,
           adv_steps=0, **kw)
    enroll(base, "NEW", _files(root), tmp_path / "b.pt", tmp_path / "wb", steps=100,
           adv_steps=0, **kw)
    enroll(base, "NEW", _files(root), tmp_path / "b.pt", tmp_path / "wb", steps=200,
           adv_steps=0, **kw)
    a = load_bundle(tmp_path / "a.pt").state_dict
    b = load_bundle(tmp_path / "b.pt").state_dict
    np.testing.assert_allclose(a["decoder.embed.weight"], b["decoder.embed.weight"], rtol=0,
                               atol=1e-6)
    # without the adversarial phase the critic's row stays the mean of the base rows
    np.testing.assert_allclose(a["critic.embed.weight"][2],
                               base.state_dict["critic.embed.weight"].mean(axis=0), atol=1e-6)
    # into the adversarial phase and on: both rows resume exactly (the checkpoint holds
    # the critic row and its optimizer)
    kw["steps"] = 100
    enroll(base, "NEW", _files(root), tmp_path / "c.pt", tmp_path / "wc", adv_steps=40, **kw)
    enroll(base, "NEW", _files(root), tmp_path / "d.pt", tmp_path / "wd", adv_steps=0, **kw)
    enroll(base, "NEW", _files(root), tmp_path / "d.pt", tmp_path / "wd", adv_steps=40, **kw)
    c = load_bundle(tmp_path / "c.pt").state_dict
    d = load_bundle(tmp_path / "d.pt").state_dict
    for k in ("decoder.embed.weight", "critic.embed.weight"):
        np.testing.assert_allclose(c[k], d[k], rtol=0, atol=1e-6)
    assert not np.allclose(c["decoder.embed.weight"], a["decoder.embed.weight"])
    # a rerun with other recordings does not take the finished row of the first set
    with pytest.raises(VawganError, match=r"another set of recordings \(4 file\(s\), now 3\)"):
        enroll(base, "NEW", _files(root)[:3], tmp_path / "e.pt", tmp_path / "wa", steps=200,
               adv_steps=0, **{k: v for k, v in kw.items() if k != "steps"})
    assert not (tmp_path / "e.pt").exists()


def test_enroll_refuses_clearly(setup, tmp_path, capsys):
    root, base_path = setup
    base = load_bundle(base_path)
    with pytest.raises(VawganError, match="exists in the bundle.*--replace"):
        enroll(base, "TGT", _files(root), tmp_path / "x.pt", tmp_path / "w", progress=False)
    with pytest.raises(InputsError, match=r"s of speech in 4 usable file.*needs at least 600 s"):
        enroll(base, "NEW", _files(root), tmp_path / "x.pt", tmp_path / "w", min_speech=600,
               progress=False)
    # the CLI: unreadable and silent files are listed, the others enrolled, exit 1
    bad = tmp_path / "in"
    bad.mkdir()
    for f in _files(root):
        (bad / f.name).write_bytes(f.read_bytes())
    (bad / "broken.wav").write_bytes(b"RIFFxxxx")
    sf.write(bad / "silent.wav", np.zeros(FS), FS)
    rc = main(["enroll", "--name", "NEW", "--in", str(bad), "--out", str(tmp_path / "n.pt"),
               "--model", str(base_path), "--steps", "20", "--adv-steps", "5", "--min-speech", "2",
               "--no-progress"])
    cap = capsys.readouterr()
    assert rc == 1 and "left out (2)" in cap.err and "broken.wav" in cap.err
    assert "silent.wav" in cap.err and (tmp_path / "n.pt").exists()
    assert "--target NEW" in cap.out
    # replacing an enrolled speaker keeps one row per name
    rc = main(["enroll", "--name", "NEW", "--in", str(root / "new"), "--out",
               str(tmp_path / "n2.pt"), "--model", str(tmp_path / "n.pt"), "--replace",
               "--steps", "20", "--adv-steps", "5", "--min-speech", "2", "--no-progress"])
    assert rc == 0 and load_bundle(tmp_path / "n2.pt").speakers == ["SRC", "TGT", "NEW"]
    capsys.readouterr()
    assert main(["enroll", "--name", "X", "--in", str(root / "new"), "--out",
                 str(base_path), "--model", str(base_path), "--no-progress"]) == 1
    assert "base bundle" in capsys.readouterr().err
    # torch threads as training sets them (--threads; checked before any work)
    import torch

    before = torch.get_num_threads()
    try:
        assert main(["enroll", "--name", "X", "--in", str(root / "new"), "--out",
                     str(tmp_path / "t.pt"), "--model", str(base_path), "--threads", "-1",
                     "--no-progress"]) == 1
        assert "--threads -1" in capsys.readouterr().err and not (tmp_path / "t.pt").exists()
        assert main(["enroll", "--name", "NEW", "--in", str(root / "new"), "--out",
                     str(tmp_path / "t.pt"), "--model", str(base_path), "--threads", "1",
                     "--steps", "5", "--adv-steps", "0", "--min-speech", "2",
                     "--no-progress"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("model", [{"arch": "conv", "segment": 8},
                                   {"critic_arch": "conv", "segment": 8}])
def test_enroll_adversarial_phase_with_sequence_models(setup, tmp_path, model):
    """The adversarial phase converts whole source segments with arch "conv" (and
    frames judged as segments by a conv critic), as training's phase 3 does."""
    from vawgan.export import save_bundle
    from vawgan.model import build_model

    root, base_path = setup
    base = load_bundle(base_path)
    cfg = Config.from_dict({"model": {"z_dim": 4, "hidden": 16, "n_layers": 1, "spk_dim": 3,
                                      "critic_hidden": 8, "critic_layers": 1, **model}})
    torch.manual_seed(0)
    path = tmp_path / "seq.pt"
    save_bundle(path, model=build_model(cfg.model, 2, 39), config=cfg, speakers=["SRC", "TGT"],
                stats={s: base.stats[s] for s in ("SRC", "TGT")}, kind="vawgan",
                train_info={"steps": 0})
    seq = load_bundle(path)
    info = enroll(seq, "NEW", _files(root), tmp_path / "new.pt", tmp_path / "w", steps=20,
                  adv_steps=5, lr=0.05, min_speech=2.0, progress=False)
    assert info["adv_steps"] == 5 and np.isfinite(info["wdist_end"])
    sd0, sd1 = seq.state_dict, load_bundle(tmp_path / "new.pt").state_dict
    assert not np.allclose(sd1["critic.embed.weight"][2], sd0["critic.embed.weight"].mean(axis=0))


def test_enroll_too_little_speech_lists_the_files_left_out(setup, tmp_path, capsys):
    """When too little speech is left, the unreadable and silent files are named (above
    the one-line error, which says how much is needed), not only counted."""
    root, base_path = setup
    d = tmp_path / "few"
    d.mkdir()
    (d / "broken.wav").write_bytes(b"RIFFxxxx")
    sf.write(d / "silent.wav", np.zeros(FS), FS)
    f = _files(root)[0]
    (d / f.name).write_bytes(f.read_bytes())
    with pytest.raises(InputsError) as e:
        enroll(load_bundle(base_path), "NEW", sorted(d.iterdir()), tmp_path / "x.pt",
               tmp_path / "w", min_speech=20, progress=False)
    assert len(e.value.left_out) == 2 and "broken.wav" in e.value.left_out[0]
    rc = main(["enroll", "--name", "NEW", "--in", str(d), "--out", str(tmp_path / "y.pt"),
               "--model", str(base_path), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and not (tmp_path / "y.pt").exists()
    assert err[0] == "left out (2):" and "broken.wav: " in err[1] and "silent.wav: " in err[2]
    assert err[-1].startswith("vawgan enroll: error: NEW: ") and "1 usable file" in err[-1]
    assert "needs at least 20 s" in err[-1] and len(err) == 4


def test_enroll_from_a_list_of_files_at_any_rate(setup, tmp_path, capsys):
    """--in a list file; recordings at another rate and in another format are resampled
    by the one analysis path (the speaker's statistics match those of the 16 kHz wavs)."""
    import librosa

    root, base_path = setup
    files = _files(root)
    x, fs = sf.read(files[0])
    sf.write(tmp_path / "n0_22k.flac", librosa.resample(x, orig_sr=fs, target_sr=22050), 22050)
    lst = tmp_path / "anna.list"
    lst.write_text("# one path a line, relative to the list\nn0_22k.flac\n"
                   + "".join(f"{f}\n" for f in files[1:]))
    rc = main(["enroll", "--name", "ANNA", "--in", str(lst), "--out", str(tmp_path / "a.pt"),
               "--model", str(base_path), "--steps", "10", "--adv-steps", "0",
               "--min-speech", "2", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and "ANNA from 4 file(s)" in out and "--target ANNA" in out
    assert (tmp_path / "a.enroll" / "dump" / "ANNA" / "n0_22k.npz").exists()
    new = load_bundle(tmp_path / "a.pt")
    assert new.speakers == ["SRC", "TGT", "ANNA"]
    ref = enroll(load_bundle(base_path), "REF", files, tmp_path / "r.pt", tmp_path / "wr",
                 steps=1, adv_steps=0, min_speech=2, progress=False)
    assert new.stats["ANNA"].lf0_mean == pytest.approx(
        load_bundle(ref["out"]).stats["REF"].lf0_mean, abs=0.02)



def test_enroll_adapt_bias_keeps_the_base_speakers_bit_identical(setup, tmp_path):
    """--adapt bias: the bundle gets model.spk_bias, the new speaker a learned bias row
    (in both phases), the base speakers zero rows: their conversions through the ONNX
    graph equal the base bundle's bit for bit. --adapt row writes the old layout."""
    root, base_path = setup
    base = load_bundle(base_path)
    kw = dict(lr=0.05, min_speech=2.0, progress=False)
    info = enroll(base, "NEW", _files(root), tmp_path / "b.pt", tmp_path / "wb", steps=30,
                  adv_steps=10, adapt="bias", **kw)
    assert info["adapt"] == "bias" and info["adv_weight"] == 2.0  # the default of bias
    new = load_bundle(tmp_path / "b.pt")
    assert new.config.model.spk_bias is True and new.train_info["enrolled"][0]["adapt"] == "bias"
    bias = new.state_dict["decoder.spk_bias.weight"]
    assert bias.shape == (3, 16) and np.all(bias[:2] == 0) and np.any(bias[2] != 0)
    for k, v in base.state_dict.items():  # base rows and every other weight untouched
        got = new.state_dict[k][:2] if k.endswith("embed.weight") else new.state_dict[k]
        assert np.array_equal(got, v), k
    f, _ = analyze_file(root / "base" / "b0.wav")
    st = base.stats["SRC"]
    for t in ("SRC", "TGT"):
        a = base.convert_body(f.body, st.mcep_mean, st.mcep_std, t)
        b = new.convert_body(f.body, st.mcep_mean, st.mcep_std, t)
        assert np.array_equal(a, b), t  # bit-identical, not only close
    # the bias row moved in the adversarial phase too (same recordings, same seed)
    enroll(base, "NEW", _files(root), tmp_path / "r.pt", tmp_path / "wr", steps=30,
           adv_steps=0, adapt="bias", **kw)
    assert not np.array_equal(load_bundle(tmp_path / "r.pt").state_dict[
        "decoder.spk_bias.weight"][2], bias[2])
    # the old row-only enrollment: no bias table, the config unchanged
    enroll(base, "NEW", _files(root), tmp_path / "o.pt", tmp_path / "wo", steps=5,
           adv_steps=0, adapt="row", **kw)
    old = load_bundle(tmp_path / "o.pt")
    assert old.config.model.spk_bias is False and "decoder.spk_bias.weight" not in old.state_dict
    # enrolling into a bundle that has the bias keeps the enrolled speaker's row; with
    # --replace the replaced speaker's bias row is learned again from zero
    enroll(new, "TWO", _files(root), tmp_path / "t.pt", tmp_path / "wt", steps=5,
           adv_steps=0, adapt="row", **kw)
    two = load_bundle(tmp_path / "t.pt").state_dict["decoder.spk_bias.weight"]
    assert np.array_equal(two[:3], bias) and np.all(two[3] == 0)
    with pytest.raises(VawganError, match="adapt='all'"):
        enroll(base, "NEW", _files(root), tmp_path / "x.pt", tmp_path / "wx", adapt="all",
               **kw)
    with pytest.raises(VawganError, match="learning rates"):
        enroll(base, "NEW", _files(root), tmp_path / "x.pt", tmp_path / "wx", bias_lr=0,
               **kw)


def test_enroll_adapt_bias_resumes_exactly(setup, tmp_path):
    """A run killed in either phase resumes the embedding row, the bias row and the
    critic row exactly; a checkpoint of the other --adapt is refused."""
    root, base_path = setup
    base = load_bundle(base_path)
    kw = dict(lr=0.05, min_speech=2.0, progress=False, adapt="bias", steps=100)
    enroll(base, "NEW", _files(root), tmp_path / "a.pt", tmp_path / "wa", adv_steps=40, **kw)
    enroll(base, "NEW", _files(root), tmp_path / "b.pt", tmp_path / "wb", adv_steps=0,
           **{**kw, "steps": 100})
    enroll(base, "NEW", _files(root), tmp_path / "b.pt", tmp_path / "wb", adv_steps=40, **kw)
    a = load_bundle(tmp_path / "a.pt").state_dict
    b = load_bundle(tmp_path / "b.pt").state_dict
    for k in ("decoder.embed.weight", "decoder.spk_bias.weight", "critic.embed.weight"):
        np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-6)
    with pytest.raises(VawganError, match="another enrollment.*adapt bias"):
        enroll(base, "NEW", _files(root), tmp_path / "c.pt", tmp_path / "wa", adv_steps=40,
               **{**kw, "adapt": "row"})
