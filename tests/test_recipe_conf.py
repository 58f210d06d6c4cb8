"""The recipe's configuration files: read strictly, and default.yaml is the defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vawgan.config import Config, load_config

CONF = Path(__file__).resolve().parents[1] / "recipes" / "vcc" / "conf"


def _assert_every_key(path: Path) -> None:
    """``path`` lists every section and key of Config, no more."""
    raw = yaml.safe_load(path.read_text())
    want = Config().to_dict()
    assert set(raw) == set(want)
    for section, values in want.items():
        assert set(raw[section]) == set(values), section


def test_default_yaml_lists_every_key_with_its_default():
    """``conf/default.yaml`` says it holds every key of Config with its default: hold it
    to that, so a new option cannot be left out of (or drift from) the commented file."""
    _assert_every_key(CONF / "default.yaml")
    assert load_config(CONF / "default.yaml") == Config()


def test_debug_yaml_lists_every_key():
    _assert_every_key(CONF / "debug.yaml")


@pytest.mark.parametrize("path", sorted((CONF / "grid").glob("*.yaml")), ids=lambda p: p.stem)
def test_grid_files_are_valid_configs(path):
    load_config(path)  # unknown keys and bad values raise
