"""Tests of vawgan.f0: range files, range proposal, the f0-range command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vawgan.cli import main
from vawgan.errors import ConfigError
from vawgan.f0 import load_f0_range, load_f0_ranges, propose_f0_range, save_f0_range

REPO = Path(__file__).resolve().parents[1]
VCC_SPEAKERS = ["SF1", "SF2", "SF3", "SM1", "SM2", "TF1", "TF2", "TM1", "TM2", "TM3"]


def test_range_file_round_trip(tmp_path):
    p = tmp_path / "SPK.yaml"
    save_f0_range(p, "SPK", 72.5, 310.0, note="made in a test\nsecond line")
    text = p.read_text()
    assert text.startswith("#") and "second line" in text
    assert load_f0_range(p) == (72.5, 310.0)
    assert load_f0_ranges(tmp_path) == {"SPK": (72.5, 310.0)}
    with pytest.raises(ValueError):
        save_f0_range(p, "SPK", 300.0, 100.0)


@pytest.mark.parametrize("text, message", [
    ("f0_floor: 80\nf0_ceil: 300\nf0_mean: 120\n", "unknown key 'f0_mean'"),
    ("f0_floor: 80\n", "missing key f0_ceil"),
    ("f0_floor: 300\nf0_ceil: 80\n", "need 0 < f0_floor < f0_ceil"),
    ("f0_floor: 0\nf0_ceil: 80\n", "need 0 < f0_floor < f0_ceil"),
    ("f0_floor: low\nf0_ceil: 300\n", "f0_floor must be a number"),
    ("f0_floor: true\nf0_ceil: 300\n", "f0_floor must be a number"),
    ("f0_floor: .nan\nf0_ceil: 300\n", "f0_floor must be a number"),
    ("- 80\n- 300\n", "expected a mapping"),
    ("f0_floor: [80\n", "not valid YAML"),
])
def test_range_file_is_strict(tmp_path, text, message):
    p = tmp_path / "X.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=message) as e:
        load_f0_ranges(tmp_path)
    assert str(p) in str(e.value)


def test_range_dir_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_f0_ranges(tmp_path / "none")
    with pytest.raises(ConfigError, match="no <speaker>.yaml"):
        load_f0_ranges(tmp_path)


def test_committed_vcc2016_ranges():
    ranges = load_f0_ranges(REPO / "recipes" / "vcc" / "conf" / "f0")
    assert sorted(ranges) == VCC_SPEAKERS
    for spk, (lo, hi) in ranges.items():
        assert 40 <= lo < hi <= 700
    # male speakers' ranges sit below female speakers' (sanity of the proposal)
    male_floors = [ranges[s][0] for s in VCC_SPEAKERS if "M" in s]
    female_floors = [ranges[s][0] for s in VCC_SPEAKERS if "F" in s]
    assert max(male_floors) < min(female_floors)


def test_propose_range_rule_and_robustness():
    rng = np.random.default_rng(0)
    true = np.exp(rng.normal(np.log(200.0), 0.15, size=5000))
    errors = true[:250] / 2  # 5% octave-down errors, as a wide search range makes
    f0 = np.concatenate([true, errors, np.zeros(1000)])  # zeros = unvoiced, ignored
    floor, ceil = propose_f0_range(f0)
    voiced = f0[f0 > 0]
    q25, q75, p99 = np.percentile(voiced, [25, 75, 99])
    assert floor <= 0.75 * q25 < floor + 5 and floor % 5 == 0
    assert ceil >= max(1.5 * q75, p99) > ceil - 5 and ceil % 5 == 0
    # the floor leaves out most of the octave errors but keeps the true distribution
    assert np.mean(errors < floor) > 0.5
    assert np.mean(true < floor) < 0.01
    # a long genuine upper tail moves the ceiling up to the 99th percentile
    tail = np.concatenate([true, np.full(200, 500.0)])
    assert propose_f0_range(tail)[1] >= 500.0


def test_propose_range_checks():
    with pytest.raises(ValueError, match="at least 10 voiced"):
        propose_f0_range(np.array([0.0, 100.0, 110.0]))
    with pytest.raises(ValueError, match="finite"):
        propose_f0_range(np.array([np.nan] + [100.0] * 20))
    with pytest.raises(ValueError):
        propose_f0_range(np.full(20, 100.0), low_factor=2.0)


def test_f0_range_command(tmp_path, capsys):
    import soundfile as sf

    fs = 16000
    spk = tmp_path / "corpus" / "S1"
    spk.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, f_mid in enumerate((140.0, 160.0, 180.0)):
        t = np.arange(int(0.6 * fs)) / fs
        f = f_mid * (1 + 0.08 * np.sin(2 * np.pi * 2 * t))
        ph = 2 * np.pi * np.cumsum(f) / fs
        x = sum(0.3 / k * np.sin(k * ph) for k in range(1, 15)) + 0.003 * rng.normal(size=t.size)
        sf.write(spk / f"{i}.wav", x, fs)
    conf = tmp_path / "conf.yaml"
    conf.write_text("feature:\n  f0_method: dio\n")
    out_yaml, png = tmp_path / "f0" / "S1.yaml", tmp_path / "S1.png"
    rc = main(["f0-range", "--corpus", str(tmp_path / "corpus"), "--speaker", "S1",
               "--max-utts", "2", "--out-yaml", str(out_yaml), "--png", str(png),
               "--config", str(conf), "--no-progress"])
    assert rc == 0
    floor, ceil = load_f0_range(out_yaml)
    assert floor < 0.9 * 140 and ceil > 1.1 * 160  # the 2 utterances used: 129..173 Hz
    assert "from 2 utterances" in out_yaml.read_text()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "S1: f0_floor" in capsys.readouterr().out
    rc = main(["f0-range", "--corpus", str(tmp_path / "corpus"), "--speaker", "S9",
               "--out-yaml", str(out_yaml)])
    assert rc == 1 and "'S9'" in capsys.readouterr().err
