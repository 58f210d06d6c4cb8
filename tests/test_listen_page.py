"""The listening page, opened in a real headless browser (Debian's chromium + chromedriver,
driven by selenium; nothing is downloaded): the page loads over HTTP from the report
folder as it is, every image and every audio source resolves, each audio element
reports a duration > 0.

Skips without chromium/chromedriver/selenium, unless VAWGAN_REQUIRE_BROWSER=1 (CI sets
it after installing them), where a missing browser is a failure.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import soundfile as sf

pysptk = pytest.importorskip("pysptk")
pytest.importorskip("matplotlib")

from vawgan.cli import main  # noqa: E402
from vawgan.features import analyze_file, synthesize  # noqa: E402
from vawgan.listen import check_page, open_browser, serve  # noqa: E402
from vawgan.report import gather_page  # noqa: E402

REQUIRE = os.environ.get("VAWGAN_REQUIRE_BROWSER") == "1"


def _browser():
    try:
        return open_browser()
    except RuntimeError as e:
        if REQUIRE:
            pytest.fail(str(e))
        pytest.skip(str(e))


def _check(driver, url):
    res = check_page(driver, url)
    assert not res["broken"], res["broken"]
    return res


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """Two report folders (pairs) under one root, each from `vawgan report` with a
    source, the natural target and two systems; then the gathered page."""
    root = tmp_path_factory.mktemp("listen")
    x, fs = sf.read(pysptk.util.example_audio_file())
    d = root / "in"
    for sub in ("src", "ref", "smooth", "vawgan+gv"):
        (d / sub).mkdir(parents=True)
    for name, (a, b) in {"u1": (0.2, 1.6), "u2": (1.8, 3.4), "u3": (0.5, 2.0)}.items():
        sf.write(d / "ref" / f"{name}.wav", x[int(a * fs):int(b * fs)], fs)
        sf.write(d / "src" / f"{name}.flac", 0.5 * x[int(a * fs):int(b * fs)], fs)
        feats, _ = analyze_file(d / "ref" / f"{name}.wav")
        body = feats.body
        pad = np.pad(body, ((4, 4), (0, 0)), mode="edge")
        sm = np.mean([pad[i:i + len(body)] for i in range(9)], axis=0)
        y = synthesize(feats, mcep=np.column_stack([feats.c0, sm]))
        sf.write(d / "smooth" / f"{name}.wav", y, fs, subtype="FLOAT")
        sf.write(d / "vawgan+gv" / f"{name}.wav", 0.9 * y, fs)
    page = root / "page"
    for pair in ("SF1-TF1", "SM1-TM1"):
        rc = main(["report", "--ref", str(d / "ref"), "--system", f"vae={d / 'smooth'}",
                   "--system", f"vawgan+gv={d / 'vawgan+gv'}", "--source", str(d / "src"),
                   "--listen", "2", "--outdir", str(page / pair)])
        assert rc == 0
    gather_page(page, ["SF1-TF1", "SM1-TM1"], "Listening test", "<p>two pairs</p>")
    return page


def test_report_copies_the_players_audio_as_16_bit_wav(reports):
    listen = json.loads((reports / "SF1-TF1" / "listen.json").read_text())
    assert listen["columns"] == ["source", "natural", "vae", "vawgan+gv"]
    assert sorted(listen["rows"]) == ["u1", "u2"]  # --listen 2: the first two in common
    for row in listen["rows"].values():
        assert set(row) == set(listen["columns"])
        for rel in row.values():
            assert not rel.startswith(("/", "..")) and "+" not in rel
            info = sf.info(reports / "SF1-TF1" / rel)
            assert info.format == "WAV" and info.subtype == "PCM_16" and info.duration > 1.0
    html = (reports / "SF1-TF1" / "index.html").read_text()
    assert html.count("<audio") == 8 and "file:" not in html and str(reports) not in html


def test_pages_load_in_a_headless_browser(reports, tmp_path):
    driver = _browser()
    try:
        with serve(reports) as srv:
            one = _check(driver, f"{srv.url}/SF1-TF1/index.html")
            assert len(one["images"]) == 4 and len(one["audio"]) == 8
            both = _check(driver, f"{srv.url}/index.html")
            assert both["title"] == "Listening test"
            assert len(both["images"]) == 8 and len(both["audio"]) == 16
            durations = sorted({round(a["duration"], 1) for a in both["audio"]})
            assert durations == [1.4, 1.6]  # u1 and u2 of every column
            driver.save_screenshot(str(tmp_path / "page.png"))
            assert (tmp_path / "page.png").read_bytes()[:4] == b"\x89PNG"
        # zipped or copied elsewhere, the folder still works: relative links only
        moved = tmp_path / "moved"
        shutil.copytree(reports, moved)
        with serve(moved) as srv:
            _check(driver, f"{srv.url}/index.html")
            # and the check sees a player whose file is gone, and a broken figure
            (moved / "SM1-TM1" / "audio" / "vae" / "u2.wav").unlink()
            with pytest.raises(AssertionError, match="u2.wav"):
                _check(driver, f"{srv.url}/index.html")
            (moved / "SM1-TM1" / "audio" / "vae" / "u2.wav").write_bytes(b"")
            (moved / "SF1-TF1" / "gv.png").write_bytes(b"not a png")
            with pytest.raises(AssertionError, match="gv.png"):
                _check(driver, f"{srv.url}/SF1-TF1/index.html")
    finally:
        driver.quit()
