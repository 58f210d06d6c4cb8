"""vawgan report: writes its PNGs, metrics.json and pages; reuses an evaluate JSON; bad options."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

pysptk = pytest.importorskip("pysptk")
pytest.importorskip("matplotlib")

from vawgan.cli import main  # noqa: E402
from vawgan.features import analyze_file, synthesize  # noqa: E402
from vawgan.report import FIGURES  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """ref/ (two ARCTIC clips) and smooth/ (c1..c39 averaged over 9 frames, resynthesized)."""
    root = tmp_path_factory.mktemp("report")
    x, fs = sf.read(pysptk.util.example_audio_file())
    (root / "ref").mkdir()
    (root / "smooth").mkdir()
    for name, (a, b) in {"u1": (0.2, 1.6), "u2": (1.8, 3.4)}.items():
        sf.write(root / "ref" / f"{name}.wav", x[int(a * fs):int(b * fs)], fs)
        feats, _ = analyze_file(root / "ref" / f"{name}.wav")
        body = feats.body
        pad = np.pad(body, ((4, 4), (0, 0)), mode="edge")
        sm = np.mean([pad[i:i + len(body)] for i in range(9)], axis=0)
        sf.write(root / "smooth" / f"{name}.wav",
                 synthesize(feats, mcep=np.column_stack([feats.c0, sm])), fs)
    return root


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_report_writes_figures_and_pages(corpus, tmp_path, capsys):
    out = tmp_path / "rep"
    rc = main(["report", "--ref", str(corpus / "ref"), "--system", f"natural={corpus / 'ref'}",
               "--system", f"smooth={corpus / 'smooth'}", "--outdir", str(out), "--jobs", "2",
               "--ms-dims", "1,5", "--utt", "u2"])
    assert rc == 0, capsys.readouterr().err
    for fig in FIGURES:
        w, h = _png_size(out / fig)
        assert w >= 400 and h >= 300
    md = (out / "index.md").read_text()
    for fig in FIGURES:
        assert f"]({fig})" in md
    assert "| smooth | 2 |" in md and "| natural | 2 | 0.00 |" in md
    assert "natural: the references themselves" in md
    page = (out / "index.html").read_text()
    assert page.startswith("<!doctype html>") and all(f'src="{f}"' in page for f in FIGURES)
    res = json.loads((out / "metrics.json").read_text())
    assert res["systems"]["smooth"]["summary"]["gv_distance"] > 0.05
    assert not list(out.glob(".*tmp*"))


def test_report_reuses_evaluate_json(corpus, tmp_path, capsys):
    ev = tmp_path / "ev.json"
    assert main(["evaluate", "--ref", str(corpus / "ref"), "--system", f"smooth={corpus / 'smooth'}",
                 "--out-json", str(ev)]) == 0
    doc = json.loads(ev.read_text())
    doc["systems"]["smooth"]["summary"]["mcd"] = 123.0  # marker: the table must come from here
    ev.write_text(json.dumps(doc))
    out = tmp_path / "rep"
    assert main(["report", "--ref", str(corpus / "ref"), "--system", f"smooth={corpus / 'smooth'}",
                 "--outdir", str(out), "--eval-json", str(ev)]) == 0
    assert "| smooth | 2 | 123.00 |" in (out / "index.md").read_text()
    capsys.readouterr()


def test_report_eval_json_round_trip_and_other_versions_refused(corpus, tmp_path, capsys):
    """The report's table from --eval-json is evaluate's own; metrics.json is written in
    format version 2 (V/UV error a fraction); other versions (1 stored percent) are refused
    with a one-line error."""
    from vawgan.evaluate import markdown_table

    ev = tmp_path / "ev.json"
    assert main(["evaluate", "--ref", str(corpus / "ref"), "--system", f"smooth={corpus / 'smooth'}",
                 "--out-json", str(ev)]) == 0
    doc = json.loads(ev.read_text())
    assert doc["version"] == 2
    out = tmp_path / "rep"
    assert main(["report", "--ref", str(corpus / "ref"), "--system", f"smooth={corpus / 'smooth'}",
                 "--outdir", str(out), "--eval-json", str(ev)]) == 0
    assert markdown_table(doc) in (out / "index.md").read_text()
    written = json.loads((out / "metrics.json").read_text())
    assert written["version"] == 2
    assert written["systems"]["smooth"]["summary"]["vuv_error"] == pytest.approx(
        doc["systems"]["smooth"]["summary"]["vuv_error"], rel=1e-12)
    for version in (1, 7):
        doc["version"] = version
        ev.write_text(json.dumps(doc))
        capsys.readouterr()
        assert main(["report", "--ref", str(corpus / "ref"), "--system",
                     f"smooth={corpus / 'smooth'}", "--outdir", str(out), "--eval-json",
                     str(ev)]) == 1
        err = capsys.readouterr().err
        assert f"format version {version}" in err and err.count("\n") == 1


@pytest.mark.parametrize("extra, want", [
    (["--scatter-dims", "1"], "expected 2 dims"),
    (["--ms-dims", "0,50"], "dims must be in 1..39"),
    (["--traj-dim", "x1"], "invalid int value"),
    (["--utt", "nope"], "--utt nope: not a readable reference utterance"),
    (["--eval-json", "{missing}"], "no such evaluate JSON file"),
])
def test_report_bad_options(corpus, tmp_path, capsys, extra, want):
    extra = [e.format(missing=tmp_path / "missing.json") for e in extra]
    argv = ["report", "--ref", str(corpus / "ref"), "--system", f"smooth={corpus / 'smooth'}",
            "--outdir", str(tmp_path / "r")] + extra
    if "--traj-dim" in extra:
        with pytest.raises(SystemExit):  # argparse rejects it before anything runs
            main(argv)
        assert want in capsys.readouterr().err
        return
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 1 and want in err and len(err.strip().splitlines()) == 1
