"""vawgan evaluate: identical inputs give zero distances, smoothing is detected, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pysptk = pytest.importorskip("pysptk")

from vawgan.cli import main  # noqa: E402
from vawgan.evaluate import evaluate, markdown_table, utterance_map  # noqa: E402
from vawgan.features import analyze_file, synthesize  # noqa: E402

FS = 16000


def _smooth(feats, width: int = 9, shrink: float = 0.6):
    """Moving average of c1..c39 over time, deviations shrunk: an over-smoothed version."""
    body = feats.body
    kernel = np.ones(width) / width
    pad = np.pad(body, ((width // 2, width // 2), (0, 0)), mode="edge")
    sm = np.stack([np.convolve(pad[:, d], kernel, mode="valid") for d in range(body.shape[1])], 1)
    sm = sm.mean(0) + shrink * (sm - sm.mean(0))
    return np.column_stack([feats.c0, sm])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """ref/u1.wav, ref/u2.wav (two ARCTIC clips); voc/ (WORLD resynthesis); smooth/."""
    root = tmp_path_factory.mktemp("eval")
    x, fs = sf.read(pysptk.util.example_audio_file())
    for d in ("ref", "voc", "smooth"):
        (root / d).mkdir()
    for name, (a, b) in {"u1": (0.2, 1.8), "u2": (1.8, 3.6)}.items():
        sf.write(root / "ref" / f"{name}.wav", x[int(a * fs):int(b * fs)], fs)
        feats, _ = analyze_file(root / "ref" / f"{name}.wav")
        sf.write(root / "voc" / f"{name}.wav", synthesize(feats), fs)
        sf.write(root / "smooth" / f"{name}.wav", synthesize(feats, mcep=_smooth(feats)), fs)
    return root


def test_identical_inputs_give_zero(corpus):
    ref = utterance_map(corpus / "ref", "--ref")
    res, feats = evaluate(ref, {"natural": ref}, jobs=2)
    s = res["systems"]["natural"]
    assert s["summary"]["n_utts"] == 2
    for k in ("mcd", "f0_rmse", "vuv_error", "gv_distance", "gv_distance_mcd", "ms_distance"):
        assert s["summary"][k] == pytest.approx(0.0, abs=1e-12), k
    assert s["summary"]["logf0_corr"] == pytest.approx(1.0)
    assert set(s["utterances"]) == {"u1", "u2"}
    assert all(u["mcd"] == 0.0 for u in s["utterances"].values())


def test_smoothing_is_detected_and_worse_than_vocoder(corpus):
    ref = utterance_map(corpus / "ref", "--ref")
    systems = {n: utterance_map(corpus / n, n) for n in ("voc", "smooth")}
    res, _ = evaluate(ref, systems)
    voc, smo = (res["systems"][n]["summary"] for n in ("voc", "smooth"))
    assert 0 < voc["mcd"] < smo["mcd"]
    assert voc["gv_distance"] < smo["gv_distance"]
    assert voc["gv_distance_mcd"] < smo["gv_distance_mcd"]
    assert voc["ms_distance"] < smo["ms_distance"]
    # over-smoothing: the GV of the smoothed set is below the natural one in every dim
    gv = np.array(res["systems"]["smooth"]["gv"])
    nat = np.array(res["systems"]["smooth"]["natural_gv"])
    assert np.all(gv < nat)
    table = markdown_table(res)
    assert table.splitlines()[0].startswith("| system | utts | MCD [dB]")
    assert "| smooth | 2 |" in table
    # V/UV error: a fraction in the data, a percentage in the table (and only there)
    assert res["version"] == 2
    for name in ("voc", "smooth"):
        s = res["systems"][name]
        assert all(0.0 <= u["vuv_error"] <= 1.0 for u in s["utterances"].values())
        cells = next(r for r in table.splitlines() if r.startswith(f"| {name} |")).split("|")
        col = table.splitlines()[0].split("|").index(" V/UV err [%] ")
        assert cells[col].strip() == f"{100 * s['summary']['vuv_error']:.1f}"


def test_recipe_tables_show_vuv_error_in_percent(monkeypatch):
    """recipes/vcc/local/evaluate_pairs.py: fractions in results_<set>.json, percent in
    the Markdown, formatted like vawgan evaluate's table."""
    from vawgan.evaluate import format_metric

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "recipes" / "vcc"
                                    / "local"))
    import evaluate_pairs

    summary = {"mcd": 6.5, "f0_rmse": 20.0, "logf0_corr": 0.7, "vuv_error": 0.125,
               "gv_distance": 0.1, "gv_distance_mcd": 0.2, "ms_distance": None}
    results = {"A-B": {"systems": {"sys": {"summary": summary}}}}
    mean = evaluate_pairs.mean_over(results, ["A-B"], "sys")
    assert mean["vuv_error"] == 0.125 and mean["n_pairs"] == 1
    row = evaluate_pairs.table({"sys": mean}).splitlines()[2]
    assert row == "| sys | 1 | 6.50 | 20.0 | 0.700 | 12.5 | 0.100 | 0.200 | n/a |"
    assert format_metric("vuv_error", 0.125, "{:.1f}") == "12.5"
    assert format_metric("mcd", float("nan"), "{:.2f}") == "n/a"


def test_recipe_stage5_analyses_every_file_once(corpus, tmp_path, monkeypatch):
    """Stage 5 (recipes/vcc/local/evaluate_pairs.py) of two pairs with the same target:
    the natural references and the vocoder files (shared by the pairs) and every
    converted file are analysed exactly once, and the report and listening page analyse
    nothing more (issue 13)."""
    import shutil

    import vawgan.evaluate as ev

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "recipes" / "vcc"
                                    / "local"))
    import evaluate_pairs

    exp, data = tmp_path / "exp", tmp_path / "data"
    (data / "dev").mkdir(parents=True)
    refs = sorted((corpus / "ref").glob("*.wav"))
    for spk in ("TF1", "SF1", "SM1"):  # natural lists: the target's and the sources'
        (data / "dev" / f"{spk}.list").write_text("".join(f"{p}\n" for p in refs))
    conv = exp / "convert" / "dev"
    pairs = ["SF1-TF1", "SM1-TF1"]  # headline pairs: both are in the listening page
    folders = [conv / "vocoder" / "TF1"] + [conv / system / pair for pair in pairs
                                              for system in ("vae", "vawgan", "vawgan+gv")]
    for folder in folders:
        folder.mkdir(parents=True)
        for p in sorted((corpus / "smooth").glob("*.wav")):
            shutil.copy(p, folder / p.name)
    calls = []
    real = ev._analyze
    monkeypatch.setattr(ev, "_analyze", lambda path, cfg: calls.append(path) or real(path, cfg))
    rc = evaluate_pairs.main(["--exp", str(exp), "--data", str(data), "--pairs", " ".join(pairs),
                              "--jobs", "1", "--speaker-sim", "off", "--listen", "2"])
    assert rc == 0
    assert len(calls) == len(set(calls))  # nothing analysed twice
    assert set(calls) == set(refs) | {f for d in folders for f in d.glob("*.wav")}
    assert (exp / "report_dev" / "index.html").is_file()
    res = json.loads((exp / "results_dev.json").read_text())
    assert set(res["pairs"]) == set(pairs)


def test_cli_json_md_list_files_and_bad_file(corpus, tmp_path, capsys):
    lst = tmp_path / "smooth.list"
    lst.write_text(f"{corpus / 'smooth' / 'u1.wav'}\n{corpus / 'smooth' / 'u2.wav'}\n"
                   f"{tmp_path / 'u3.wav'}\n")
    (tmp_path / "u3.wav").write_text("not audio")
    ref_list = tmp_path / "ref.list"
    ref_list.write_text("\n".join(str(p) for p in sorted((corpus / "ref").glob("*.wav")))
                        + f"\n{tmp_path / 'u3.wav'}\n")
    rc = main(["evaluate", "--ref", str(ref_list), "--system", f"natural={corpus / 'ref'}",
               "--system", f"smooth={lst}", "--out-json", str(tmp_path / "r.json"),
               "--out-md", str(tmp_path / "r.md"), "--jobs", "2"])
    out = capsys.readouterr().out
    assert rc == 1  # an unreadable file: listed, left out, and the exit code says so
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["format"] == "vawgan-evaluate"
    assert list(res["systems"]) == ["natural", "smooth"]
    assert res["systems"]["smooth"]["summary"]["n_utts"] == 2
    assert res["systems"]["smooth"]["unreadable"] == ["u3"]
    assert any("u3.wav: not a readable audio file" in f for f in res["failures"])
    assert "unreadable files (1)" in out
    assert (tmp_path / "r.md").read_text() == markdown_table(res)


@pytest.mark.parametrize("argv, want", [
    (["--system", "broken"], "expected NAME=DIR_OR_LIST"),
    ([], "at least one --system"),
    (["--system", "a={ref}", "--system", "a={ref}"], "given twice"),
    (["--system", "x={nothing}"], "neither a folder nor a list file"),
    (["--mcd-dims", "60", "--system", "a={ref}"], "--mcd-dims 60"),
])
def test_cli_bad_arguments(corpus, tmp_path, capsys, argv, want):
    argv = [a.format(ref=corpus / "ref", nothing=tmp_path / "nothing") for a in argv]
    rc = main(["evaluate", "--ref", str(corpus / "ref")] + argv)
    err = capsys.readouterr().err
    assert rc == 1 and want in err and len(err.strip().splitlines()) == 1


def test_no_matching_utterances(corpus, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    sf.write(other / "zz.wav", sf.read(corpus / "ref" / "u1.wav")[0], FS)
    rc = main(["evaluate", "--ref", str(corpus / "ref"), "--system", f"x={other}"])
    assert rc == 1 and "no utterance that matches" in capsys.readouterr().err


def test_duplicate_utterance_names(tmp_path):
    lst = tmp_path / "l.list"
    lst.write_text("a/u1.wav\nb/u1.flac\n")
    with pytest.raises(Exception, match="two files for utterance u1"):
        utterance_map(lst, "--ref")


@pytest.mark.data
def test_real_vcc2016_vocoder_floor(tmp_path):
    """On real speech the vocoder resynthesis is close to natural (skips without the corpus)."""
    data = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "vcc2016" / \
        "vcc2016_training" / "TF1"
    if not data.is_dir():
        pytest.skip(f"{data} not present")
    ref = {p.stem: p for p in sorted(data.glob("10000[12].flac"))}
    voc = {}
    for u, p in ref.items():
        feats, fs = analyze_file(p)
        sf.write(tmp_path / f"{u}.wav", synthesize(feats), fs)
        voc[u] = tmp_path / f"{u}.wav"
    res, _ = evaluate(ref, {"vocoder": voc})
    s = res["systems"]["vocoder"]["summary"]
    assert 0.5 < s["mcd"] < 4.0 and s["gv_distance"] < 0.1
