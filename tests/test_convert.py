"""vawgan-convert / vawgan convert: round trip with a tiny (untrained) bundle, the f0
transform, postfilter plumbing, consistency with evaluate, and every bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pysptk = pytest.importorskip("pysptk")
torch = pytest.importorskip("torch")

from vawgan import convert  # noqa: E402
from vawgan.cli import convert_main, main  # noqa: E402
from vawgan.config import Config  # noqa: E402
from vawgan.errors import VawganError  # noqa: E402
from vawgan.features import analyze_file, synthesize  # noqa: E402
from vawgan.postfilter import DEFAULT_PF_FIRST  # noqa: E402
from vawgan.uttmetrics import utterance_metrics  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FS = 16000


def _arctic(seconds: float = 1.6) -> np.ndarray:
    x, fs = sf.read(pysptk.util.example_audio_file())
    assert fs == FS
    return x[int(0.3 * fs): int((0.3 + seconds) * fs)].astype(np.float64)


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    """src.wav (ARCTIC clip), tgt.wav (the same sentence, f0 x1.5 and a tilted spectrum)."""
    d = tmp_path_factory.mktemp("audio")
    sf.write(d / "src.wav", _arctic(), FS)
    feats, _ = analyze_file(d / "src.wav")
    mc = feats.mcep.copy()
    mc[:, 1] += 0.3
    mc[:, 2:] *= 1.2
    sf.write(d / "tgt.wav", 0.8 * synthesize(feats, f0=feats.f0 * 1.5, mcep=mc), FS)
    return d


@pytest.fixture(scope="module")
def bundle_path(audio, tmp_path_factory):
    """A tiny untrained bundle with speakers SRC and TGT; TGT's statistics are those of tgt.wav."""
    from vawgan.export import save_bundle
    from vawgan.model import build_model
    from vawgan.stats import compute_speaker_stats

    cfg = Config.from_dict({"model": {"z_dim": 4, "hidden": 16, "n_layers": 1, "spk_dim": 2,
                                      "critic_hidden": 8, "critic_layers": 1}})
    stats = {spk: compute_speaker_stats([analyze_file(audio / f"{name}.wav")[0]],
                                        cfg.feature.silence_db, cfg.stats.ms_fft)
             for spk, name in (("SRC", "src"), ("TGT", "tgt"))}
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_bundle(path, model=build_model(cfg.model, 2, 39), config=cfg,
                speakers=["SRC", "TGT"], stats=stats, kind="vae", train_info={"steps": 0})
    return path


@pytest.fixture(scope="module")
def bundle(bundle_path):
    from vawgan.bundle import load_bundle

    return load_bundle(bundle_path)


def _cli(capsys, *argv):
    rc = convert_main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


# ----------------------------------------------------------------------------- API
def test_default_target_rule(bundle):
    assert convert.default_target(bundle) == "TGT"  # first speaker starting with T


def test_convert_features_keeps_c0_ap_and_maps_f0(bundle, audio):
    feats, _ = analyze_file(audio / "src.wav", bundle.config.feature)
    conv = convert.convert_features(bundle, feats, "TGT")
    assert conv.mcep.shape == feats.mcep.shape
    np.testing.assert_array_equal(conv.c0, feats.c0)
    np.testing.assert_array_equal(conv.coded_ap, feats.coded_ap)
    np.testing.assert_array_equal(conv.vuv, feats.vuv)
    # source statistics estimated from the input: its log-f0 lands exactly on the
    # target's, then within the analysis range (f0_floor..f0_ceil)
    lf0 = np.log(feats.f0[feats.vuv])
    tgt, cfg = bundle.stats["TGT"], bundle.config.feature
    want_f0 = np.exp((lf0 - lf0.mean()) / lf0.std() * tgt.lf0_std + tgt.lf0_mean)
    np.testing.assert_allclose(conv.f0[conv.vuv], np.clip(want_f0, cfg.f0_floor, cfg.f0_ceil),
                               rtol=1e-9)
    # the body is exactly the bundle's conversion with the input's own statistics
    src = convert.estimate_source_stats(feats, bundle.config.feature.silence_db)
    want = bundle.convert_body(feats.body, src.mcep_mean, src.mcep_std, "TGT")
    np.testing.assert_allclose(conv.body, want)


def test_source_speaker_statistics_are_used(bundle, audio):
    feats, _ = analyze_file(audio / "src.wav", bundle.config.feature)
    st = convert.speaker_source_stats(bundle, "SRC")
    conv = convert.convert_features(bundle, feats, "TGT", source_stats=st)
    want = bundle.convert_body(feats.body, st.mcep_mean, st.mcep_std, "TGT")
    np.testing.assert_allclose(conv.body, want)


def test_convert_with_context_bundle(audio, tmp_path):
    """A bundle whose encoder sees 2 frames of context each side converts whole utterances."""
    from vawgan.bundle import load_bundle
    from vawgan.export import save_bundle
    from vawgan.model import build_model, context_windows

    cfg = Config.from_dict({"model": {"z_dim": 4, "hidden": 16, "n_layers": 1, "spk_dim": 2,
                                      "critic_hidden": 8, "critic_layers": 1, "context": 2}})
    feats, _ = analyze_file(audio / "src.wav", cfg.feature)
    from vawgan.stats import compute_speaker_stats

    st = compute_speaker_stats([feats], cfg.feature.silence_db, cfg.stats.ms_fft)
    torch.manual_seed(0)
    model = build_model(cfg.model, 2, 39)
    path = tmp_path / "ctx.pt"
    save_bundle(path, model=model, config=cfg, speakers=["SRC", "TGT"],
                stats={"SRC": st, "TGT": st}, kind="vae")
    b = load_bundle(path)
    conv = convert.convert_features(b, feats, "TGT")
    T = feats.mcep.shape[0]
    assert conv.body.shape == (T, 39) and conv.mcep.shape == feats.mcep.shape
    assert np.all(np.isfinite(conv.body))
    np.testing.assert_array_equal(conv.c0, feats.c0)
    # the body is the torch model's conversion of the whole (normalized) utterance
    s = convert.estimate_source_stats(feats, cfg.feature.silence_db)
    x = ((feats.body - s.mcep_mean) / s.mcep_std).astype(np.float32)
    with torch.no_grad():
        mu, _ = model.encoder(context_windows(torch.from_numpy(x), 2))
        y = model.decoder(mu, torch.ones(T, dtype=torch.long))[0].double().numpy()
    np.testing.assert_allclose(conv.body, y * st.mcep_std + st.mcep_mean, atol=1e-4)
    out = tmp_path / "out.wav"
    convert.convert_file(b, audio / "src.wav", out, "TGT")
    assert sf.info(str(out)).frames > 0


@pytest.mark.parametrize("kind", ["gv", "ms"])
def test_postfilter_moves_toward_target(bundle, audio, kind):
    from vawgan.metrics import global_variance

    feats, _ = analyze_file(audio / "src.wav", bundle.config.feature)
    plain = convert.convert_features(bundle, feats, "TGT")
    post = convert.convert_features(bundle, feats, "TGT", postfilter=kind, pf_alpha=1.0)
    mask = feats.nonsilent(bundle.config.feature.silence_db)
    np.testing.assert_array_equal(post.body[~mask], plain.body[~mask])  # silence untouched
    np.testing.assert_array_equal(post.f0, plain.f0)
    m = bundle.stats["TGT"]
    fs = bundle.config.stats.ms_fft
    kw = dict(silence_db=bundle.config.feature.silence_db, ms_fft=fs, target_gv=m.gv,
              target_ms=m.ms)
    before, after = utterance_metrics(plain, **kw), utterance_metrics(post, **kw)
    key = f"{kind}_distance"
    assert after[key] < 0.5 * before[key]
    # by default the orders below DEFAULT_PF_FIRST are left as converted, the rest filtered
    k = DEFAULT_PF_FIRST - 1
    np.testing.assert_array_equal(post.body[:, :k], plain.body[:, :k])
    assert not np.allclose(post.body[mask][:, k:], plain.body[mask][:, k:])
    every = convert.convert_features(bundle, feats, "TGT", postfilter=kind, pf_first=1)
    if kind == "gv":
        np.testing.assert_allclose(global_variance(post.body[mask])[k:], m.gv[k:], rtol=1e-6)
        np.testing.assert_allclose(global_variance(every.body[mask]), m.gv, rtol=1e-6)
    assert not np.allclose(every.body[:, :k], plain.body[:, :k])
    half = convert.convert_features(bundle, feats, "TGT", postfilter=kind, pf_alpha=0.5)
    assert not np.allclose(half.body, post.body) and not np.allclose(half.body, plain.body)


def test_gv_postfilter_aims_at_the_gv_synthesis_turns_into_the_natural_one(bundle, audio,
                                                                           monkeypatch):
    """With the target's ``gv_resynth_ratio`` measured, the converted features get
    ``gv / gv_resynth_ratio``; without it, ``gv``."""
    import dataclasses

    from vawgan.metrics import global_variance

    feats, _ = analyze_file(audio / "src.wav", bundle.config.feature)
    mask = feats.nonsilent(bundle.config.feature.silence_db)
    st = bundle.stats["TGT"]
    assert st.gv_resynth_ratio is None
    ratio = np.linspace(0.7, 1.3, st.dim)
    monkeypatch.setitem(bundle.stats, "TGT", dataclasses.replace(st, gv_resynth_ratio=ratio))
    post = convert.convert_features(bundle, feats, "TGT", postfilter="gv", pf_first=1)
    np.testing.assert_allclose(global_variance(post.body[mask]), st.gv / ratio, rtol=1e-6)


def test_postfilter_arguments_checked(bundle, audio):
    feats, _ = analyze_file(audio / "src.wav", bundle.config.feature)
    with pytest.raises(ValueError, match="postfilter must be one of"):
        convert.convert_features(bundle, feats, "TGT", postfilter="wiener")
    with pytest.raises(ValueError, match="alpha"):
        convert.convert_features(bundle, feats, "TGT", postfilter="gv", pf_alpha=2.0)


def test_convert_file_round_trip_other_rate(bundle, audio, tmp_path):
    import librosa

    x = librosa.resample(_arctic(), orig_sr=FS, target_sr=22050)
    sf.write(tmp_path / "in22.wav", x, 22050)
    info = convert.convert_file(bundle, tmp_path / "in22.wav", tmp_path / "out.flac",
                                target="TGT", postfilter="gv")
    y, fs = sf.read(tmp_path / "out.flac")
    assert fs == 22050 and abs(len(y) - len(x)) < 0.02 * 22050
    assert np.max(np.abs(y)) > 0.01 and np.all(np.isfinite(y))
    assert info["fs"] == 22050 and info["postfilter"] == "gv" and info["target"] == "TGT"
    assert set(info["metrics"]) == {"gv_distance", "gv_distance_mcd", "gv_ratio", "gv_ratio_mcd",
                                    "ms_distance"}


# ----------------------------------------------------------------------------- CLI
def test_cli_round_trip_json_and_reference(bundle_path, audio, tmp_path, capsys):
    out = tmp_path / "out.wav"
    rc, stdout, err = _cli(capsys, audio / "src.wav", out, "--model", bundle_path, "--json",
                           "--reference", audio / "tgt.wav", "--sr", 8000)
    assert rc == 0, err
    info = json.loads(stdout)
    assert info["target"] == "TGT" and info["source"] == "input" and info["metrics_on"] == "features"
    assert {"gv_distance", "ms_distance", "mcd", "f0_rmse", "logf0_corr", "vuv_error"} <= set(info["metrics"])
    assert info["metrics"]["mcd"] > 0
    assert sf.info(out).samplerate == 8000
    assert not list(tmp_path.glob(".*tmp*"))  # atomic write left nothing behind


def test_cli_text_output_and_postfilter_option(bundle_path, audio, tmp_path, capsys):
    rc, stdout, err = _cli(capsys, audio / "src.wav", tmp_path / "o.wav", "--model", bundle_path,
                           "--source", "SRC", "--postfilter", "ms", "--pf-alpha", "0.5")
    assert rc == 0, err
    assert "SRC -> TGT" in stdout and "postfilter ms" in stdout and "GVD" in stdout


def test_cli_prints_metrics_before_and_after_the_postfilter_with_their_dims(
        bundle_path, audio, tmp_path, capsys):
    """Default (GV postfilter): the GV ratio / GVD / MSD of the converted features before
    and after the postfilter against the target's natural statistics, with the dims each
    covers, in the text and in --json (issue 12)."""
    rc, stdout, err = _cli(capsys, audio / "src.wav", tmp_path / "o.wav", "--model", bundle_path)
    assert rc == 0, err
    lines = stdout.splitlines()
    assert "GV ratio and GVD over c1..c39 / c1..c24, MSD over c1..c39" in lines[1]
    before = next(s for s in lines if s.strip().startswith("before postfilter (features):"))
    after = next(s for s in lines if s.strip().startswith("after postfilter gv (features):"))
    for row in (before, after):
        assert "GV ratio" in row and "GVD" in row and "MSD" in row
    assert "by construction" in stdout
    # a target with a measured vocoder GV ratio: the postfilter aims elsewhere, and says so
    import dataclasses

    from vawgan.bundle import load_bundle
    from vawgan.export import save_bundle

    b = load_bundle(bundle_path)
    stats = dict(b.stats)
    stats["TGT"] = dataclasses.replace(stats["TGT"], gv_resynth_ratio=np.full(b.n_dims, 1.1))
    ratio_path = tmp_path / "ratio.pt"
    save_bundle(ratio_path, model=b.model, config=b.config, speakers=b.speakers, stats=stats,
                kind=b.kind)
    rc, stdout, err = _cli(capsys, audio / "src.wav", tmp_path / "o2.wav", "--model",
                           str(ratio_path), "--target", "TGT")
    assert rc == 0, err
    assert "by construction" not in stdout and "gv_resynth_ratio" in stdout
    rc, stdout, err = _cli(capsys, audio / "src.wav", tmp_path / "o.wav", "--model", bundle_path,
                           "--json")
    info = json.loads(stdout)
    assert info["dims"] == {"gv_distance": "c1..c39", "gv_ratio": "c1..c39",
                            "ms_distance": "c1..c39", "gv_distance_mcd": "c1..c24",
                            "gv_ratio_mcd": "c1..c24", "mcd": "c1..c24"}
    assert set(info["metrics_before_postfilter"]) <= set(info["dims"])
    assert info["pf_first"] == DEFAULT_PF_FIRST
    assert info["metrics_before_postfilter"]["gv_distance"] > info["metrics"]["gv_distance"]
    # every order filtered: the GVD against the statistics the filter targets is 0
    rc, stdout, err = _cli(capsys, audio / "src.wav", tmp_path / "o.wav", "--model", bundle_path,
                           "--json", "--pf-first", "1")
    info = json.loads(stdout)
    assert info["metrics_before_postfilter"]["gv_distance"] > 1e-3 > info["metrics"]["gv_distance"]


def test_metrics_on_output_equal_evaluate(bundle_path, bundle, audio, tmp_path, capsys):
    """--metrics-on output re-analyzes the wav: the same GV / MS distances as vawgan evaluate
    (TGT's statistics are those of tgt.wav alone, the natural set of evaluate here)."""
    out = tmp_path / "conv" / "tgt.wav"  # named like the reference sentence
    rc, stdout, err = _cli(capsys, audio / "src.wav", out, "--model", bundle_path, "--json",
                           "--metrics-on", "output")
    assert rc == 0, err
    mine = json.loads(stdout)["metrics"]
    from vawgan.evaluate import evaluate

    res, _ = evaluate({"tgt": audio / "tgt.wav"}, {"sys": {"tgt": out}}, bundle.config.feature)
    theirs = res["systems"]["sys"]["utterances"]["tgt"]
    assert mine["gv_distance"] == pytest.approx(theirs["gv_distance"], rel=1e-9)
    assert mine["ms_distance"] == pytest.approx(theirs["ms_distance"], rel=1e-9)


#: every per-utterance figure, with its unit (vawgan.uttmetrics)
UTT_METRICS = ("gv_distance", "gv_distance_mcd", "gv_ratio", "gv_ratio_mcd", "ms_distance",
               "mcd", "f0_rmse", "logf0_corr", "vuv_error", "n_frames")


def test_convert_and_evaluate_report_the_same_figures_in_the_same_units(
        bundle_path, audio, tmp_path, capsys):
    """``vawgan-convert --json --reference --metrics-on output`` and ``vawgan evaluate
    --out-json`` on the same file: the same numbers, V/UV error a fraction in both JSON
    documents; evaluate's table shows it in percent."""
    out = tmp_path / "conv" / "tgt.wav"
    rc, stdout, err = _cli(capsys, audio / "src.wav", out, "--model", bundle_path, "--json",
                           "--reference", audio / "tgt.wav", "--metrics-on", "output")
    assert rc == 0, err
    mine = json.loads(stdout)["metrics"]
    assert set(mine) == set(UTT_METRICS)
    (tmp_path / "ref").mkdir()
    (tmp_path / "ref" / "tgt.wav").write_bytes((audio / "tgt.wav").read_bytes())
    assert main(["evaluate", "--ref", str(tmp_path / "ref"), "--system", f"sys={out.parent}",
                 "--out-json", str(tmp_path / "r.json"), "--out-md", str(tmp_path / "r.md")]) == 0
    capsys.readouterr()
    res = json.loads((tmp_path / "r.json").read_text())
    theirs = res["systems"]["sys"]["utterances"]["tgt"]
    assert res["version"] == 2 and set(theirs) == set(UTT_METRICS)
    for k in UTT_METRICS:
        assert mine[k] == pytest.approx(theirs[k], rel=1e-12, abs=1e-12), k
    assert 0.0 < mine["vuv_error"] < 1.0  # a fraction, not a percentage
    summary = res["systems"]["sys"]["summary"]
    assert summary["vuv_error"] == pytest.approx(mine["vuv_error"], rel=1e-12)
    row = next(r for r in (tmp_path / "r.md").read_text().splitlines() if r.startswith("| sys "))
    header = (tmp_path / "r.md").read_text().splitlines()[0].split("|")
    assert row.split("|")[header.index(" V/UV err [%] ")].strip() == \
        f"{100 * mine['vuv_error']:.1f}"


def test_convert_file_metrics_are_utterance_metrics(bundle, audio, tmp_path):
    """convert_file's figures are utterance_metrics of the converted features, with the
    target's bundle statistics as natural statistics."""
    feats, _ = analyze_file(audio / "src.wav", bundle.config.feature)
    ref, _ = analyze_file(audio / "tgt.wav", bundle.config.feature)
    info = convert.convert_file(bundle, audio / "src.wav", tmp_path / "o.wav", "TGT",
                                postfilter="ms", reference=audio / "tgt.wav")
    conv = convert.convert_features(bundle, feats, "TGT", postfilter="ms")
    st = bundle.stats["TGT"]
    want = utterance_metrics(conv, silence_db=bundle.config.feature.silence_db,
                             ms_fft=bundle.config.stats.ms_fft, target_gv=st.gv,
                             target_ms=st.ms, ref=ref)
    assert info["metrics"] == want


def test_compare_bundles_uses_the_same_figures(bundle_path, bundle, audio, tmp_path,
                                               monkeypatch, capsys):
    """The recipe's feature-level model selection prints the MCD and F0 RMSE of
    utterance_metrics and the set GV distance of stats.set_gv_ms."""
    from vawgan.features import save_features
    from vawgan.metrics import gv_distance
    from vawgan.stats import set_gv_ms, stat_frames

    cfg = bundle.config.feature
    feats = {spk: analyze_file(audio / f"{name}.wav", cfg)[0]
             for spk, name in (("SRC", "src"), ("TGT", "tgt"))}
    for spk, f in feats.items():
        (tmp_path / "dump" / spk).mkdir(parents=True)
        save_features(tmp_path / "dump" / spk / "u1.npz", f)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "dev.list").write_text("SRC/u1\nTGT/u1\n")
    monkeypatch.syspath_prepend(str(REPO / "recipes" / "vcc" / "local"))
    import compare_bundles

    assert compare_bundles.main(["--dump", str(tmp_path / "dump"), "--data",
                                 str(tmp_path / "data"), "--bundle", f"tiny={bundle_path}",
                                 "--pairs", "SRC-TGT"]) == 0
    printed = capsys.readouterr().out
    conv = convert.convert_features(bundle, feats["SRC"], "TGT",
                                    convert.speaker_source_stats(bundle, "SRC"))
    m = utterance_metrics(conv, silence_db=cfg.silence_db, ref=feats["TGT"])
    fft = bundle.config.stats.ms_fft
    gvd = gv_distance(set_gv_ms([stat_frames(conv, cfg.silence_db)], fft)[0],
                      set_gv_ms([stat_frames(feats["TGT"], cfg.silence_db)], fft)[0])
    assert f"| tiny | {m['mcd']:.3f} | {m['f0_rmse']:.1f} | {gvd:.3f} |" in printed


def test_missing_default_model(monkeypatch, audio, tmp_path, capsys):
    monkeypatch.setattr(convert, "DEFAULT_MODEL", tmp_path / "nope" / "vcc2016_vawgan.pt")
    rc, _, err = _cli(capsys, audio / "src.wav", tmp_path / "o.wav")
    assert rc == 1
    assert "no default model is installed" in err and "--model" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("case", ["non_audio", "silent", "overwrite", "target", "source",
                                  "missing_model", "bad_suffix", "alpha"])
def test_bad_inputs_one_line_errors(case, bundle_path, audio, tmp_path, capsys):
    src = audio / "src.wav"
    out = tmp_path / "o.wav"
    extra = []
    if case == "non_audio":
        src = tmp_path / "notes.wav"
        src.write_text("this is not audio\n")
        want = "not a readable audio file"
    elif case == "silent":
        src = tmp_path / "silent.wav"
        sf.write(src, np.zeros(FS), FS)
        want = "silent"
    elif case == "overwrite":
        src = tmp_path / "copy.wav"
        sf.write(src, _arctic(0.5), FS)
        out = src
        want = "refusing to overwrite"
    elif case == "target":
        extra = ["--target", "NOBODY"]
        want = "unknown speaker 'NOBODY' (this model knows: SRC, TGT)"
    elif case == "source":
        extra = ["--source", "NOBODY"]
        want = "this model knows: SRC, TGT"
    elif case == "missing_model":
        extra = ["--model", tmp_path / "missing.pt"]
        want = "no such model bundle"
    elif case == "bad_suffix":
        out = tmp_path / "o.mp3"
        want = "output must end in .wav or .flac"
    else:
        extra = ["--pf-alpha", "1.5"]
        want = "--pf-alpha 1.5: must be in [0, 1]"
    if "--model" not in extra:
        extra += ["--model", bundle_path]
    before = src.read_bytes() if src.exists() else None
    rc, _, err = _cli(capsys, src, out, *extra)
    assert rc == 1
    assert want in err and err.startswith("vawgan-convert: error: ")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    if case == "overwrite":
        assert src.read_bytes() == before
    elif case != "overwrite":
        assert not out.exists()


def test_corrupt_bundle(audio, tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    rc, _, err = _cli(capsys, audio / "src.wav", tmp_path / "o.wav", "--model", bad)
    assert rc == 1 and "corrupt" in err


# ----------------------------------------------------------------------------- batch
def test_batch_convert_skips_bad_and_resumes(bundle_path, audio, tmp_path, capsys):
    ind = tmp_path / "in"
    ind.mkdir()
    for name in ("a", "b"):
        sf.write(ind / f"{name}.wav", _arctic(0.8 + 0.2 * (name == "b")), FS)
    (ind / "c.wav").write_bytes(b"garbage")
    out = tmp_path / "out"
    argv = ["convert", "--model", str(bundle_path), "--target", "TGT", "--in", str(ind),
            "--out", str(out), "--jobs", "2"]
    rc = main(argv)
    stdout, err = capsys.readouterr()
    assert rc == 1
    assert "2 converted, 0 skipped (output exists), 1 failed" in stdout
    assert "c.wav: not a readable audio file" in err
    assert sorted(p.name for p in out.glob("*.wav")) == ["a.wav", "b.wav"]
    summary = json.loads((out / "convert.json").read_text())
    assert len(summary["converted"]) == 2 and summary["failed"][0]["input"].endswith("c.wav")
    # resumable: existing outputs are skipped; a list file works as input
    lst = tmp_path / "in.list"
    lst.write_text("# comment\nin/a.wav\n\nin/b.wav\n")
    argv[argv.index("--in") + 1] = str(lst)
    mtime = (out / "a.wav").stat().st_mtime_ns
    assert main(argv) == 0
    assert "0 converted, 2 skipped" in capsys.readouterr().out
    assert (out / "a.wav").stat().st_mtime_ns == mtime
    assert main(argv + ["--overwrite", "--jobs", "1"]) == 0
    assert "2 converted, 0 skipped" in capsys.readouterr().out


def test_cli_resolves_target_once(bundle_path, audio, tmp_path, capsys, monkeypatch):
    calls = []
    real = convert.resolve_target

    def counting(bundle, target=None):
        calls.append(target)
        return real(bundle, target)

    monkeypatch.setattr(convert, "resolve_target", counting)
    rc, stdout, err = _cli(capsys, audio / "src.wav", tmp_path / "o.wav", "--model", bundle_path)
    assert rc == 0, err
    assert calls == [None] and "-> TGT" in stdout


def test_batch_library_processes_equal_threads(bundle_path, bundle, audio, tmp_path):
    """One Converter per batch; worker processes rebuild it from the model path and the
    resolved set-up, and write the same files as threads."""
    from vawgan.convert_batch import convert_batch, plan_batch

    files = [audio / "src.wav", audio / "tgt.wav"]
    conv = convert.Converter(bundle, source="SRC", postfilter="gv")
    assert conv.target == "TGT" and conv.source_stats.origin == "SRC"
    outs = {}
    for backend in ("threads", "processes"):
        out = tmp_path / backend
        todo, skipped = plan_batch(files, out)
        res = convert_batch(conv, todo, out, skipped, jobs=2, backend=backend,
                            model=bundle_path, progress=False)
        assert not res.failed and len(res.converted) == 2 and res.source == "SRC"
        assert res.summary().startswith("2 converted, 0 skipped (output exists), 0 failed")
        assert json.loads((out / "convert.json").read_text())["target"] == "TGT"
        outs[backend] = [sf.read(out / f"{f.stem}.wav")[0] for f in files]
    for a, b in zip(outs["threads"], outs["processes"]):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(VawganError, match="two inputs named src"):
        plan_batch([audio / "src.wav", tmp_path / "x" / "src.flac"], tmp_path / "o")


def test_batch_bad_arguments(bundle_path, tmp_path, capsys):
    rc = main(["convert", "--model", str(bundle_path), "--in", str(tmp_path / "none"),
               "--out", str(tmp_path / "o")])
    assert rc == 1 and "neither a folder nor a list file" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    rc = main(["convert", "--model", str(bundle_path), "--in", str(tmp_path / "empty"),
               "--out", str(tmp_path / "o")])
    assert rc == 1 and "holds no audio files" in capsys.readouterr().err


# ----------------------------------------------------------------------------- imports
# (pkg_resources is not listed: pyworld's own __init__ imports it, floor included)
HEAVY = ("torch", "pysptk", "matplotlib", "librosa", "joblib", "tqdm", "scipy")


def _fresh_convert(argv, tmp_path, entry="convert_script"):
    """Run the vawgan-convert console-script entry point in a fresh interpreter; report
    which heavy modules it imported (written by an atexit-free hook before os._exit)."""
    report = tmp_path / "modules.json"
    code = ("import json, os, sys\n"
            "import vawgan.cli as c\n"
            "_exit = os._exit\n"
            "def _report(rc):\n"
            f"    open({str(report)!r}, 'w').write(json.dumps(sorted(m for m in {HEAVY!r} "
            "if m in sys.modules)))\n"
            "    _exit(rc)\n"
            "os._exit = _report\n"
            f"sys.argv = ['vawgan-convert'] + {[str(a) for a in argv]!r}\n"
            f"c.{entry}()\n")
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True,
                       text=True, env=env, cwd=tmp_path)
    imported = json.loads(report.read_text()) if report.exists() else None
    timed = {line.split("|")[-1].strip() for line in r.stderr.splitlines()
             if line.startswith("import time:")}
    return r, imported, timed


def test_fresh_vawgan_convert_imports_no_torch(bundle_path, audio, tmp_path):
    """The console script on a 16 kHz file: no torch, pysptk, plotting, resampling, joblib,
    tqdm or scipy; checked in sys.modules and in -X importtime."""
    r, imported, timed = _fresh_convert([audio / "src.wav", tmp_path / "o.wav", "--model",
                                         bundle_path, "--reference", audio / "tgt.wav"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "o.wav").is_file() and "MCD" in r.stdout
    assert imported == ["scipy"] or imported == []  # scipy only for the DTW of --reference
    assert "numpy" in timed and not {"torch", "pysptk", "matplotlib", "librosa"} & timed
    r, imported, _ = _fresh_convert([audio / "src.wav", tmp_path / "p.wav", "--model",
                                     bundle_path], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert imported == []


def test_cli_default_postfilter_is_gv():
    """The default chosen on the VCC2016 dev set (docs/results.md)."""
    import argparse

    from vawgan.commands import convert as batch, convert_one

    for add in (convert_one.add_arguments, batch.add_arguments):
        p = argparse.ArgumentParser()
        add(p)
        args = ["a.wav", "b.wav"] if add is convert_one.add_arguments else ["--in", "x", "--out", "y"]
        assert p.parse_args(args).postfilter == "gv"


def test_batch_several_targets_from_dump_features(bundle_path, bundle, audio, tmp_path, capsys):
    """`vawgan convert --target A,B` analyses each input once and writes one folder per
    target; a feature file of a dump (.npz, the same analysis) converts exactly as the
    audio it was extracted from (the output level included, stored with the features)."""
    from vawgan import convert_batch as cb
    from vawgan.features import load_features, save_features

    feats, fs_orig = analyze_file(audio / "src.wav")
    npz = tmp_path / "dump" / "src.npz"
    npz.parent.mkdir()
    save_features(npz, feats, fs_orig=fs_orig)
    back = load_features(npz)
    assert back.level_db == pytest.approx(feats.level_db)
    # one output per (input, target): from audio (analysed) and from the dump (read)
    calls = []
    real = cb.Converter.convert_file

    def counting(self, in_path, out_path, **kw):
        calls.append((Path(in_path).name, self.target, kw.get("feats") is not None))
        return real(self, in_path, out_path, **kw)

    outs = {}
    for name, inp in (("wav", audio / "src.wav"), ("npz", npz)):
        lst = tmp_path / f"{name}.list"
        lst.write_text(f"{inp}\n")
        out = tmp_path / name / "SRC-{target}"
        calls.clear()
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(cb.Converter, "convert_file", counting)
            rc = main(["convert", "--model", str(bundle_path), "--source", "SRC",
                       "--target", "TGT,SRC", "--in", str(lst), "--out", str(out),
                       "--postfilter", "none"])
        stdout = capsys.readouterr().out
        assert rc == 0
        assert stdout.count("1 converted, 0 skipped") == 2
        # both targets got features made once, by the batch (never re-analysed per target)
        assert sorted(calls) == sorted([(inp.name, "TGT", True), (inp.name, "SRC", True)])
        outs[name] = {t: sf.read(tmp_path / name / f"SRC-{t}" / "src.wav")[0]
                      for t in ("TGT", "SRC")}
        assert json.loads((tmp_path / name / "SRC-TGT" / "convert.json").read_text())["target"] == "TGT"
    for t in ("TGT", "SRC"):
        np.testing.assert_allclose(outs["npz"][t], outs["wav"][t], atol=1e-4)
    assert not np.allclose(outs["wav"]["TGT"][:len(outs["wav"]["SRC"])], outs["wav"]["SRC"])
    # several targets without {target}: <out>/<target>/
    lst = tmp_path / "npz.list"
    assert main(["convert", "--model", str(bundle_path), "--target", "TGT,SRC", "--in",
                 str(lst), "--out", str(tmp_path / "plain")]) == 0
    assert (tmp_path / "plain" / "TGT" / "src.wav").exists()
    assert (tmp_path / "plain" / "SRC" / "src.wav").exists()
    capsys.readouterr()


@pytest.mark.parametrize("target, fragment", [("TGT,,SRC", "an empty name"),
                                              ("TGT,TGT", "named twice"),
                                              ("TGT,NOPE", "NOPE")])
def test_batch_bad_target_lists(bundle_path, audio, tmp_path, capsys, target, fragment):
    lst = tmp_path / "in.list"
    lst.write_text(f"{audio / 'src.wav'}\n")
    rc = main(["convert", "--model", str(bundle_path), "--target", target, "--in", str(lst),
               "--out", str(tmp_path / "o-{target}")])
    err = capsys.readouterr().err
    assert rc != 0 and fragment in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("o-*/*.wav"))


def test_dump_features_made_with_other_settings_fail_per_file(bundle_path, audio, tmp_path,
                                                              capsys):
    from vawgan.config import FeatureConfig
    from vawgan.features import save_features

    other, _ = analyze_file(audio / "src.wav", FeatureConfig(frame_period=10.0))
    save_features(tmp_path / "x.npz", other)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    lst = tmp_path / "in.list"
    lst.write_text(f"{tmp_path / 'x.npz'}\n{tmp_path / 'bad.npz'}\n{audio / 'src.wav'}\n")
    rc = main(["convert", "--model", str(bundle_path), "--in", str(lst),
               "--out", str(tmp_path / "o")])
    cap = capsys.readouterr()
    assert rc == 1 and "1 converted, 0 skipped (output exists), 2 failed" in cap.out
    assert "x.npz" in cap.err and "config wants" in cap.err
    assert "bad.npz: corrupt feature file" in cap.err


def test_version_of_both_scripts(capsys):
    from vawgan import __version__

    assert main(["--version"]) == 0 and capsys.readouterr().out.strip() == f"vawgan {__version__}"
    assert convert_main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"vawgan-convert {__version__}"


def test_batch_summary_says_what_the_gv_postfilter_started_from(bundle_path, audio, tmp_path,
                                                                 capsys):
    lst = tmp_path / "in.list"
    lst.write_text(f"{audio / 'src.wav'}\n")
    assert main(["convert", "--model", str(bundle_path), "--target", "TGT", "--in", str(lst),
                 "--out", str(tmp_path / "o"), "--postfilter", "gv", "--pf-first", "1"]) == 0
    out = capsys.readouterr().out
    assert "before the gv postfilter" in out and "by construction" not in out
    rec = json.loads((tmp_path / "o" / "convert.json").read_text())["converted"][0]
    assert rec["metrics"]["gv_distance"] < 1e-6 < rec["metrics_before_postfilter"]["gv_distance"]


def test_pf_first_checked_before_work(bundle_path, audio, tmp_path, capsys):
    for bad, msg in (("0", "must be >= 1"), ("40", "converts c1..c39")):
        rc, stdout, err = _cli(capsys, audio / "src.wav", tmp_path / "o.wav", "--model",
                               bundle_path, "--pf-first", bad)
        assert rc == 1 and msg in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "o.wav").exists()


@pytest.mark.parametrize("kind", ["gv", "ms"])
def test_convert_without_raw_copy_gives_the_same_output(bundle, audio, kind):
    """With nobody reading the features before the postfilter (``metrics_on none``),
    the raw body is postfiltered in place and not kept: the same converted features."""
    feats, _ = analyze_file(audio / "src.wav")
    c = convert.Converter(bundle, postfilter=kind)
    raw, want = c._convert(feats)
    none, got = c._convert(feats, keep_raw=False)
    assert raw is not None and none is None
    np.testing.assert_allclose(got.mcep, want.mcep, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(got.f0, want.f0)
    assert not np.allclose(raw.mcep, want.mcep)  # the postfilter did something
