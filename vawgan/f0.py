"""Per-speaker f0 ranges and their proposal from an f0 histogram.

f0 range files
    Like sprocket's speaker YAML: ``<dir>/<speaker>.yaml`` holding exactly::

        f0_floor: 120.0   # Hz, lower bound of the f0 search
        f0_ceil: 440.0    # Hz, upper bound of the f0 search

    :func:`load_f0_ranges` reads a folder of them strictly (unknown or missing keys,
    non-numbers and ``floor >= ceil`` are errors naming the file).

Proposal (``vawgan f0-range``)
    f0 is extracted with a wide search range (40-700 Hz by default) through the one
    feature pipeline (:func:`vawgan.features.analyze_file`); from the voiced frames the
    range is set with the quartile rule of De Looze & Hirst (2008), the ceiling widened
    to the 99th percentile where the upper tail reaches further:

    .. math:: f_\\mathrm{floor} = 0.75\\,Q_{25}, \\qquad
              f_\\mathrm{ceil} = \\max(1.5\\,Q_{75},\\ P_{99})

    (rounded outwards to 5 Hz). The floor uses a quartile because a wide search range
    makes many sub-harmonic (octave-down) errors and creaky frames below the true range,
    which a rule on the 1st percentile would follow; above the range errors are rare, so
    the genuine upper tail of the voice (questions, emphasis) is kept.
    A histogram on a log-frequency axis with the range marked is written as a PNG for
    a visual check (sprocket's manual step).

    C. De Looze and D. Hirst, "Detecting changes in key and range for the automatic
    modelling and coding of intonation", Proc. Speech Prosody 2008.

The f0 transform of the conversion, :func:`vawgan.postfilter.convert_f0`, sits with the
other post-processing of converted features.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Sequence, Tuple

import numpy as np

from .errors import ConfigError
from .io import PathLike, atomic_write_text, atomic_write_with

#: wide search range used to propose a speaker's range (Hz)
WIDE_FLOOR = 40.0
WIDE_CEIL = 700.0

_KEYS = ("f0_floor", "f0_ceil")


# --------------------------------------------------------------------------- range files
def load_f0_range(path: PathLike) -> Tuple[float, float]:
    """Read one speaker's f0 range YAML strictly.

    Returns
    -------
    (floor, ceil) : tuple of float, Hz
    """
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: f0 range file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read f0 range file ({type(e).__name__})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with f0_floor and f0_ceil")
    unknown = sorted(set(map(str, data)) - set(_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} (allowed: f0_floor, f0_ceil)")
    vals = []
    for k in _KEYS:
        if k not in data:
            raise ConfigError(f"{path}: missing key {k}")
        v = data[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ConfigError(f"{path}: {k} must be a number in Hz, got {v!r}")
        vals.append(float(v))
    floor, ceil = vals
    if not 0 < floor < ceil:
        raise ConfigError(f"{path}: need 0 < f0_floor < f0_ceil, got {floor:g} and {ceil:g}")
    return floor, ceil


def load_f0_ranges(directory: PathLike) -> Dict[str, Tuple[float, float]]:
    """Read every ``<speaker>.yaml`` (or ``.yml``) in ``directory``.

    Returns
    -------
    dict speaker -> (floor, ceil)
    """
    d = Path(directory)
    if not d.is_dir():
        raise ConfigError(f"{d}: f0 range directory not found")
    try:
        files = sorted(p for p in d.iterdir() if p.suffix in (".yaml", ".yml")
                       and not p.name.startswith("."))
    except OSError as e:
        raise ConfigError(f"{d}: cannot read f0 range directory ({type(e).__name__})") from None
    if not files:
        raise ConfigError(f"{d}: no <speaker>.yaml f0 range files")
    out: Dict[str, Tuple[float, float]] = {}
    for p in files:
        if p.stem in out:
            raise ConfigError(f"{p}: second f0 range file for speaker {p.stem}")
        out[p.stem] = load_f0_range(p)
    return out


def format_f0_range(speaker: str, floor: float, ceil: float, note: str = "") -> str:
    """The text of a commented f0 range YAML file."""
    lines = [f"# f0 search range of speaker {speaker} for WORLD f0 analysis (Hz).",
             "# Read by `vawgan extract --f0-dir` (vawgan.f0.load_f0_ranges); keys are strict."]
    lines += [f"# {line}" for line in note.splitlines() if line.strip()]
    lines += [f"f0_floor: {floor:g}   # Hz, lower bound of the f0 search",
              f"f0_ceil: {ceil:g}   # Hz, upper bound of the f0 search", ""]
    return "\n".join(lines)


def save_f0_range(path: PathLike, speaker: str, floor: float, ceil: float, note: str = "") -> None:
    """Write a commented f0 range YAML atomically (read back by :func:`load_f0_range`)."""
    if not 0 < floor < ceil:
        raise ValueError(f"need 0 < floor < ceil, got {floor} and {ceil}")
    atomic_write_text(path, format_f0_range(speaker, floor, ceil, note))


# --------------------------------------------------------------------------- proposal
def propose_f0_range(f0: np.ndarray, low_factor: float = 0.75, high_factor: float = 1.5,
                     high_percentile: float = 99.0, step: float = 5.0) -> Tuple[float, float]:
    """Propose an f0 search range from voiced f0 values (after De Looze & Hirst 2008).

    ``floor = low_factor * Q25``, ``ceil = max(high_factor * Q75, P[high_percentile])``.

    Parameters
    ----------
    f0 : ndarray, shape (N,)
        f0 values in Hz; zeros (unvoiced) are ignored.
    low_factor, high_factor : float
        Factors on the lower and upper quartiles.
    high_percentile : float
        The ceiling is at least this percentile of the voiced f0.
    step : float
        Round the floor down and the ceiling up to a multiple of this (Hz).

    Returns
    -------
    (floor, ceil) : tuple of float, Hz
    """
    f0 = np.asarray(f0, dtype=np.float64).ravel()
    if not np.all(np.isfinite(f0)) or np.any(f0 < 0):
        raise ValueError("f0 must be finite and >= 0")
    if not 0 < low_factor <= 1 <= high_factor:
        raise ValueError(f"need 0 < low_factor <= 1 <= high_factor, "
                         f"got {low_factor}, {high_factor}")
    if not 50 <= high_percentile <= 100:
        raise ValueError(f"high_percentile must be in [50, 100], got {high_percentile}")
    if step <= 0:
        raise ValueError(f"step must be > 0, got {step}")
    voiced = f0[f0 > 0]
    if voiced.size < 10:
        raise ValueError(f"need at least 10 voiced frames, got {voiced.size}")
    q25, q75, top = np.percentile(voiced, [25, 75, high_percentile])
    floor = max(step, math.floor(low_factor * q25 / step) * step)
    ceil = math.ceil(max(high_factor * q75, top) / step) * step
    return float(floor), float(ceil)


def plot_f0_histogram(path: PathLike, f0: np.ndarray, floor: float, ceil: float,
                      title: str = "",
                      search: Tuple[float, float] = (WIDE_FLOOR, WIDE_CEIL)) -> None:
    """Histogram of voiced f0 on a log-frequency axis with the range marked (PNG, atomic)."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    voiced = np.asarray(f0, dtype=np.float64)
    voiced = voiced[voiced > 0]
    bins = np.geomspace(search[0], search[1], 80)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.hist(voiced, bins=bins, color="0.55")
    ax.set_xscale("log")
    ticks = [t for t in (50, 70, 100, 150, 200, 300, 400, 500, 700) if search[0] <= t <= search[1]]
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(t) for t in ticks])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.axvline(floor, color="C3", lw=2, label=f"floor {floor:g} Hz")
    ax.axvline(ceil, color="C0", lw=2, label=f"ceil {ceil:g} Hz")
    q25, q50, q75 = np.percentile(voiced, [25, 50, 75])
    for q in (q25, q50, q75):
        ax.axvline(q, color="k", lw=0.8, ls=":")
    ax.set_xlabel("f0 (Hz, log scale; dotted: quartiles)")
    ax.set_ylabel("voiced frames")
    ax.set_title(title or "voiced f0")
    ax.legend(loc="upper right")
    fig.tight_layout()
    try:
        atomic_write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100), suffix=".png")
    finally:
        plt.close(fig)


# --------------------------------------------------------------------------- f0 of files
def collect_f0(sources: Sequence[PathLike], floor: float = WIDE_FLOOR, ceil: float = WIDE_CEIL,
               cfg=None, jobs: int = 1, progress: bool = True) -> Tuple[np.ndarray, list]:
    """Voiced f0 of files analysed with a wide search range, through the extract path.

    Returns
    -------
    f0 : ndarray, shape (N,) voiced f0 values (Hz) of all files
    failures : list of one-line error messages
    """
    import tempfile

    import joblib
    from tqdm import tqdm

    from .config import FeatureConfig
    from .extract import extract_one
    from .features import load_features

    cfg = (cfg or FeatureConfig()).for_speaker(floor, ceil)
    values, failures = [], []

    with tempfile.TemporaryDirectory(prefix="vawgan-f0-") as tmp:
        tasks = [(str(s), str(Path(tmp) / f"{i}.npz"), cfg) for i, s in enumerate(sources)]
        gen = joblib.Parallel(n_jobs=jobs, return_as="generator_unordered")(
            joblib.delayed(extract_one)(*t) for t in tasks)
        dests = {t[0]: t[1] for t in tasks}
        for res in tqdm(gen, total=len(tasks), unit="utt", desc="f0", disable=not progress,
                        file=sys.stderr):
            if res["ok"]:
                f0 = load_features(dests[res["source"]]).f0
                values.append(f0[f0 > 0])
            else:
                failures.append(res["error"])
    return (np.concatenate(values) if values else np.zeros(0)), failures


@dataclass
class F0RangeProposal:
    """A proposed f0 range and the voiced-f0 figures behind it (:func:`propose_from_f0`)."""

    floor: float  #: Hz
    ceil: float  #: Hz
    n_utts: int  #: utterances whose f0 was used
    n_voiced: int  #: voiced frames
    percentiles: Tuple[float, ...]  #: voiced f0 at 1/25/50/75/99 %, Hz
    below: float  #: fraction of voiced frames below the floor
    above: float  #: fraction of voiced frames above the ceiling
    search: Tuple[float, float]  #: search range of the analysis, Hz

    def note(self) -> str:
        """How the range was found: the comment of the range file."""
        lo, hi = self.search
        return (f"Proposed by `vawgan f0-range` from {self.n_utts} utterances "
                f"({self.n_voiced} voiced frames, search {lo:g}-{hi:g} Hz):\n"
                f"voiced f0 percentiles 1/25/50/75/99 = "
                + "/".join(f"{v:.0f}" for v in self.percentiles) + " Hz;\n"
                f"floor = 0.75 x Q25, ceil = max(1.5 x Q75, P99) (after De Looze & Hirst 2008),\n"
                f"rounded to 5 Hz; {100 * self.below:.2f}% of the voiced frames lie below the "
                f"floor (mostly octave-down errors), {100 * self.above:.2f}% above the ceiling.")

    def summary(self, speaker: str) -> str:
        """One line: the range, the median and the fractions outside."""
        return (f"{speaker}: f0_floor {self.floor:g} Hz, f0_ceil {self.ceil:g} Hz "
                f"(median {self.percentiles[2]:.0f} Hz; {100 * self.below:.2f}% of voiced "
                f"frames below, {100 * self.above:.2f}% above)")


def propose_from_f0(f0: np.ndarray, n_utts: int,
                    search: Tuple[float, float] = (WIDE_FLOOR, WIDE_CEIL)) -> F0RangeProposal:
    """:func:`propose_f0_range` of voiced f0 values, with the figures of the proposal.

    Parameters
    ----------
    f0 : ndarray, shape (N,)
        Voiced f0 values in Hz (N >= 10), e.g. from :func:`collect_f0`.
    n_utts : int
        Utterances they come from (reported).
    search : (floor, ceil)
        Search range of the analysis (reported).

    Returns
    -------
    F0RangeProposal
    """
    f0 = np.asarray(f0, dtype=np.float64)
    floor, ceil = propose_f0_range(f0)
    q = np.percentile(f0, [1, 25, 50, 75, 99])
    return F0RangeProposal(floor, ceil, int(n_utts), int(f0.size),
                           tuple(float(v) for v in q), float(np.mean(f0 < floor)),
                           float(np.mean(f0 > ceil)), (float(search[0]), float(search[1])))
