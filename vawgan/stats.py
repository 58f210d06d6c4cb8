"""Per-speaker statistics of a dump: ``vawgan stats`` and ``stats.json``.

For each speaker, over the utterances given (the recipe passes only the training
split: the dev sentences 100151-100162 never enter statistics):

* ``mcep_mean``, ``mcep_std`` (39,): mean and (biased) standard deviation of
  c1..c39 over the non-silent frames (:meth:`Features.nonsilent` with
  ``feature.silence_db``) of all utterances pooled;
* ``c0_mean``, ``c0_std``: the same for the energy coefficient c0;
* ``lf0_mean``, ``lf0_std``: natural-log f0 over the voiced frames;
* ``gv`` (39,): global variance, the mean over utterances of each utterance's
  variance of c1..c39 over its non-silent frames (:func:`vawgan.metrics.global_variance`,
  Toda et al. 2007);
* ``ms`` (ms_fft//2+1, 39): modulation spectrum in dB, the mean over utterances of
  each utterance's log-power MS of c1..c39 over its non-silent frames
  (:func:`vawgan.metrics.modulation_spectrum`, Takamichi et al. 2016);
* ``n_utts``, ``n_frames`` (non-silent frames used);
* ``gv_resynth_ratio`` (39,), optional: how WORLD analysis-synthesis changes the GV
  of this speaker's speech, ``GV(re-analysed resynthesis) / GV(natural)`` over the
  first ``stats.resynth_utts`` utterances (:func:`resynthesis_bodies`).
  The GV postfilter aims at ``gv / gv_resynth_ratio`` (:meth:`SpeakerStats.postfilter_target`),
  so that the *waveform* a user gets, analysed again, has the speaker's GV: on VCC2016
  the vocoder raises the GV of c5..c39 by up to 0.06 in log10, more for female voices.

The GV and MS of *any* set of utterances (a speaker here; a converted system and its
natural references in ``vawgan evaluate``, ``vawgan report`` and the recipe) come from
one place: :func:`stat_frames` selects each utterance's frames and :func:`set_gv_ms`
computes the two statistics of the set.

File format (``stats.json``, written atomically)::

    {"format": "vawgan-stats", "version": 1, "feature_config": {...}, "ms_fft": 256,
     "speakers": {"SF1": {"n_utts", "n_frames", "mcep_mean", "mcep_std", "lf0_mean",
                          "lf0_std", "c0_mean", "c0_std", "gv", "ms"[, "gv_resynth_ratio"]}}}

Utterance lists for ``--utts-file``: one ``speaker/utt`` per line (``#`` comments
and blank lines ignored; :func:`vawgan.corpus.read_utt_list`), as written by
``recipes/vcc/local/data_prep.py``. The command is :mod:`vawgan.commands.stats`.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .errors import StatsError
from .io import PathLike, atomic_write_text

FORMAT = "vawgan-stats"
VERSION = 1

_VECTORS = ("mcep_mean", "mcep_std", "gv")
_SCALARS = ("lf0_mean", "lf0_std", "c0_mean", "c0_std")
_FIELDS = ("n_utts", "n_frames") + _VECTORS + _SCALARS + ("ms",)
_OPTIONAL = ("gv_resynth_ratio",)  #: absent from statistics made before it existed



@dataclass
class SpeakerStats:
    """One speaker's statistics (see the module docstring for definitions)."""

    n_utts: int  #: utterances used
    n_frames: int  #: non-silent frames used
    mcep_mean: np.ndarray  #: (D,) mean of c1..cD over non-silent frames
    mcep_std: np.ndarray  #: (D,) standard deviation of c1..cD
    lf0_mean: float  #: mean natural-log f0 over voiced frames
    lf0_std: float  #: its standard deviation
    c0_mean: float  #: mean c0 over non-silent frames
    c0_std: float  #: its standard deviation
    gv: np.ndarray  #: (D,) global variance
    ms: np.ndarray  #: (ms_fft//2+1, D) mean log-power modulation spectrum, dB
    #: (D,) GV of the WORLD analysis-synthesis of some of the utterances over their own
    #: GV (None: not measured; the GV postfilter then aims at ``gv``)
    gv_resynth_ratio: Optional[np.ndarray] = None

    def __post_init__(self):
        self.check()

    def check(self, where: str = "SpeakerStats") -> None:
        """Raise ValueError unless shapes agree and every value is finite and sane."""
        for k in _VECTORS + ("ms",):
            setattr(self, k, np.asarray(getattr(self, k), dtype=np.float64))
        d = self.mcep_mean.shape
        if len(d) != 1 or d[0] < 1:
            raise ValueError(f"{where}: mcep_mean must be a (D,) vector, got shape {d}")
        for k in ("mcep_std", "gv"):
            if getattr(self, k).shape != d:
                raise ValueError(f"{where}: {k} has shape {getattr(self, k).shape}, expected {d}")
        if self.ms.ndim != 2 or self.ms.shape[1] != d[0] or self.ms.shape[0] < 2:
            raise ValueError(f"{where}: ms has shape {self.ms.shape}, expected (K, {d[0]})")
        for k in _VECTORS + ("ms",):
            if not np.all(np.isfinite(getattr(self, k))):
                raise ValueError(f"{where}: {k} contains NaN or infinite values")
        for k in _SCALARS:
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) \
                    or not math.isfinite(v):
                raise ValueError(f"{where}: {k} must be a finite number, got {v!r}")
            setattr(self, k, float(v))
        if np.any(self.mcep_std <= 0) or self.lf0_std <= 0 or self.c0_std <= 0:
            raise ValueError(f"{where}: standard deviations must be > 0")
        if np.any(self.gv <= 0):
            raise ValueError(f"{where}: gv must be > 0")
        if self.gv_resynth_ratio is not None:
            r = np.asarray(self.gv_resynth_ratio, dtype=np.float64)
            if r.shape != d:
                raise ValueError(f"{where}: gv_resynth_ratio has shape {r.shape}, expected {d}")
            if not np.all(np.isfinite(r)) or np.any(r <= 0):
                raise ValueError(f"{where}: gv_resynth_ratio must be finite and > 0")
            self.gv_resynth_ratio = r
        for k in ("n_utts", "n_frames"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{where}: {k} must be a positive integer, got {v!r}")
            setattr(self, k, int(v))

    @property
    def dim(self) -> int:
        return int(self.mcep_mean.shape[0])

    def postfilter_target(self, kind: str) -> np.ndarray:
        """The statistic the ``kind`` postfilter pulls a conversion's features toward.

        "gv": ``gv / gv_resynth_ratio`` when the ratio was measured (the features' GV
        that WORLD synthesis turns into the speaker's GV), else ``gv``; "ms": ``ms``.
        """
        if kind not in ("gv", "ms"):
            raise ValueError(f"postfilter_target: kind must be 'gv' or 'ms', got {kind!r}")
        if kind == "gv" and self.gv_resynth_ratio is not None:
            return self.gv / self.gv_resynth_ratio
        return getattr(self, kind)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready dict (lists of floats)."""
        out: Dict[str, Any] = {"n_utts": self.n_utts, "n_frames": self.n_frames}
        for k in _VECTORS:
            out[k] = getattr(self, k).tolist()
        for k in _SCALARS:
            out[k] = getattr(self, k)
        out["ms"] = self.ms.tolist()
        if self.gv_resynth_ratio is not None:
            out["gv_resynth_ratio"] = self.gv_resynth_ratio.tolist()
        return {k: out[k] for k in _FIELDS + _OPTIONAL if k in out}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "speaker stats") -> "SpeakerStats":
        """Inverse of :meth:`to_dict`; ValueError on missing/unknown keys or bad values."""
        if not isinstance(d, Mapping):
            raise ValueError(f"{where}: expected a mapping, got {type(d).__name__}")
        missing = [k for k in _FIELDS if k not in d]
        if missing:
            raise ValueError(f"{where}: missing {missing[0]}")
        unknown = sorted(set(d) - set(_FIELDS) - set(_OPTIONAL))
        if unknown:
            raise ValueError(f"{where}: unknown key {unknown[0]}")
        kw = dict(d)
        kw.setdefault("gv_resynth_ratio", None)
        try:
            for k in _VECTORS + ("ms",) + _OPTIONAL:
                if kw[k] is not None:
                    kw[k] = np.asarray(d[k], dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: {k} is not a numeric array") from None
        obj = cls.__new__(cls)
        obj.__dict__.update(kw)
        obj.check(where)
        return obj


def stat_frames(feats, silence_db: float) -> np.ndarray:
    """c1..cM of the non-silent frames of one utterance: what GV and MS are computed on.

    Parameters
    ----------
    feats : Features
        ``mcep`` (T, M+1).
    silence_db : float
        Frames below ``mean power + silence_db`` are left out (:meth:`Features.nonsilent`).

    Returns
    -------
    ndarray, shape (T', M), T' <= T
    """
    return feats.body[feats.nonsilent(silence_db)]


def set_gv_ms(bodies: Sequence[np.ndarray], ms_fft: int = 256) -> Tuple[np.ndarray, np.ndarray]:
    """GV and MS of a set of utterances, as stored in :class:`SpeakerStats`.

    Every utterance weighs the same: the GV is the mean over utterances of each one's
    variance (:func:`vawgan.metrics.global_variance`), the MS the mean over utterances of
    each one's modulation spectrum in dB (:func:`vawgan.metrics.modulation_spectrum`).

    Parameters
    ----------
    bodies : sequence of ndarray, each (T_i, M)
        The utterances, normally :func:`stat_frames` of each. Those with fewer than 2
        frames (no variance) are left out.
    ms_fft : int
        Modulation-spectrum FFT length in frames.

    Returns
    -------
    gv : ndarray, shape (M,)
    ms : ndarray, shape (ms_fft // 2 + 1, M), dB
    """
    from .metrics import _check_n_fft, global_variance, modulation_spectrum

    ms_fft = _check_n_fft(ms_fft)
    kept = [np.asarray(b, dtype=np.float64) for b in bodies if len(b) >= 2]
    if not kept:
        raise ValueError("set_gv_ms: no utterance has 2 frames")
    ms = np.mean([modulation_spectrum(b, ms_fft) for b in kept], axis=0)
    return global_variance(kept), ms


def resynthesis_bodies(feats_list: Sequence, cfg=None,
                       jobs: int = 1) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    """The non-silent c1..cM of utterances and of their analysis-synthesis.

    Each utterance's features go through WORLD synthesis (:func:`vawgan.features.synthesize`,
    as a conversion's output does) and the signal is analysed again
    (:func:`vawgan.features.analyze`), in memory (``vawgan analysis-synthesis`` does the
    same through files). Both sides select their frames with :func:`stat_frames`, so
    that statistics of the two lists compare the vocoder's effect alone (the speaker's
    ``gv_resynth_ratio``).

    Parameters
    ----------
    feats_list : sequence of Features
    cfg : FeatureConfig, optional
        Analysis settings of the re-analysis (default ``FeatureConfig()``); its rate must
        be the features' rate.
    jobs : int
        Threads (WORLD releases the GIL).

    Returns
    -------
    natural, resynthesized : list of ndarray, each (T_i', M)
        Utterances with fewer than 2 non-silent frames on either side are left out of
        both.
    """
    from joblib import Parallel, delayed

    from .config import FeatureConfig
    from .features import analyze, synthesize
    from .parallel import worker_count

    cfg = cfg or FeatureConfig()

    def one(f):
        return stat_frames(f, cfg.silence_db), stat_frames(
            analyze(synthesize(f), f.fs, cfg, check=False), cfg.silence_db)

    feats_list = list(feats_list)
    n = worker_count(jobs, len(feats_list)) if feats_list else 1
    pairs = Parallel(n_jobs=n, backend="threading")(delayed(one)(f) for f in feats_list)
    kept = [(a, b) for a, b in pairs if len(a) >= 2 and len(b) >= 2]
    return [a for a, _ in kept], [b for _, b in kept]


def compute_speaker_stats(feats_list: Iterable, silence_db: float = -20.0,
                          ms_fft: int = 256, resynth_utts: int = 0,
                          feature_config=None, jobs: int = 1) -> SpeakerStats:
    """Statistics of one speaker's utterances.

    Parameters
    ----------
    feats_list : iterable of Features
        The speaker's utterances (``mcep`` (T_i, D+1)).
    silence_db : float
        Frames below ``mean power + silence_db`` are left out (:meth:`Features.nonsilent`).
    ms_fft : int
        Modulation-spectrum FFT length in frames.
    resynth_utts : int
        Measure ``gv_resynth_ratio`` on the first this many utterances (WORLD synthesis
        and analysis of each, :func:`vawgan.stats.resynthesis_bodies`); 0 = not measured.
    feature_config : FeatureConfig, optional
        The analysis settings of that re-analysis (default ``FeatureConfig()``).
    jobs : int
        Threads for the resynthesis.

    Returns
    -------
    SpeakerStats
        ``gv`` (D,), ``ms`` (ms_fft//2+1, D), ...
    """
    feats_list = list(feats_list)
    if not feats_list:
        raise ValueError("compute_speaker_stats: no utterances")
    if not isinstance(ms_fft, int) or ms_fft < 2:
        raise ValueError(f"ms_fft must be an integer >= 2, got {ms_fft!r}")
    dims = {f.mcep.shape[1] for f in feats_list}
    if len(dims) != 1:
        raise ValueError(f"compute_speaker_stats: utterances differ in mcep dims {sorted(dims)}")
    bodies, c0s, lf0s = [], [], []
    for f in feats_list:
        m = f.nonsilent(silence_db)
        if np.count_nonzero(m) >= 2:  # GV needs 2 frames; a near-silent utterance adds nothing
            bodies.append(f.body[m])
            c0s.append(f.c0[m])
        lf0s.append(f.lf0[f.vuv])
    if not bodies:
        raise ValueError("compute_speaker_stats: no utterance has 2 non-silent frames")
    body = np.concatenate(bodies)
    c0 = np.concatenate(c0s)
    lf0 = np.concatenate(lf0s)
    if lf0.size < 2:
        raise ValueError("compute_speaker_stats: fewer than 2 voiced frames")
    gv, ms = set_gv_ms(bodies, ms_fft)
    ratio = None
    if resynth_utts > 0:
        from .metrics import global_variance

        some = feats_list[:resynth_utts]
        natural, resyn = resynthesis_bodies(some, feature_config, jobs)
        ratio = global_variance(resyn) / global_variance(natural)
    return SpeakerStats(n_utts=len(bodies), n_frames=int(body.shape[0]),
                        mcep_mean=body.mean(axis=0), mcep_std=body.std(axis=0),
                        lf0_mean=float(lf0.mean()), lf0_std=float(lf0.std()),
                        c0_mean=float(c0.mean()), c0_std=float(c0.std()),
                        gv=gv, ms=ms, gv_resynth_ratio=ratio)


# --------------------------------------------------------------------------- files
def stats_document(stats: Mapping[str, SpeakerStats], feature_config: Optional[dict] = None,
                   ms_fft: Optional[int] = None) -> Dict[str, Any]:
    """The ``stats.json`` document of per-speaker statistics."""
    if not stats:
        raise ValueError("no speakers")
    ks = {s.ms.shape[0] for s in stats.values()}
    if len(ks) != 1:
        raise ValueError(f"speakers differ in MS bins {sorted(ks)}")
    n_bins = ks.pop()
    if ms_fft is None:
        ms_fft = 2 * (n_bins - 1)
    if ms_fft // 2 + 1 != n_bins:
        raise ValueError(f"ms_fft={ms_fft} does not match {n_bins} MS bins")
    return {"format": FORMAT, "version": VERSION, "feature_config": dict(feature_config or {}),
            "ms_fft": int(ms_fft), "speakers": {k: v.to_dict() for k, v in sorted(stats.items())}}


def save_stats(path: PathLike, stats: Mapping[str, Any], feature_config: Optional[dict] = None,
               ms_fft: Optional[int] = None) -> None:
    """Write ``stats.json`` atomically.

    ``stats`` is either ``{speaker: SpeakerStats}`` or a whole document (as returned by
    :func:`stats_document`), which is checked before writing.
    """
    if stats.get("format") == FORMAT:
        doc = dict(stats)
        _parse(doc, str(path))
    else:
        doc = stats_document(stats, feature_config, ms_fft)
    atomic_write_text(path, json.dumps(doc, indent=1) + "\n")


def _parse(doc: Any, where: str) -> Dict[str, SpeakerStats]:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise StatsError(f"{where}: not a vawgan statistics file (format != {FORMAT!r})")
    if doc.get("version") != VERSION:
        raise StatsError(f"{where}: statistics version {doc.get('version')!r}, "
                         f"this vawgan reads {VERSION}")
    spk = doc.get("speakers")
    if not isinstance(spk, dict) or not spk:
        raise StatsError(f"{where}: no speakers")
    out = {}
    for name, d in spk.items():
        try:
            out[name] = SpeakerStats.from_dict(d, f"speaker {name}")
        except ValueError as e:
            raise StatsError(f"{where}: {e}") from None
    ms_fft = doc.get("ms_fft")
    for name, s in out.items():
        if not isinstance(ms_fft, int) or s.ms.shape[0] != ms_fft // 2 + 1:
            raise StatsError(f"{where}: speaker {name}: ms has {s.ms.shape[0]} bins, "
                             f"ms_fft is {ms_fft!r}")
    return out


def load_stats_document(path: PathLike) -> Dict[str, Any]:
    """The whole ``stats.json`` document, validated (StatsError if unusable)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StatsError(f"{path}: statistics file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise StatsError(f"{path}: cannot read statistics file ({type(e).__name__})") from None
    except ValueError as e:
        raise StatsError(f"{path}: corrupt statistics file (invalid JSON: {e})") from None
    _parse(doc, str(path))
    return doc


def load_stats(path: PathLike) -> Dict[str, SpeakerStats]:
    """Read ``stats.json``: ``{speaker: SpeakerStats}`` (StatsError if unusable)."""
    return _parse(load_stats_document(path), str(path))


# --------------------------------------------------------------------------- a dump
def dump_stats(dump: PathLike, cfg=None, speakers=None, utts=None, exclude_utts=None,
               progress: bool = True, jobs: int = 1) -> Dict[str, SpeakerStats]:
    """Statistics of every speaker of a dump (selection as in :func:`vawgan.extract.iter_dump`).

    ``jobs`` threads resynthesize the utterances ``gv_resynth_ratio`` is measured on
    (``cfg.stats.resynth_utts`` per speaker).

    Each feature file must be compatible with ``cfg.feature`` (FeatureError otherwise).
    """
    from tqdm import tqdm

    from .config import Config
    from .extract import iter_dump
    from .features import check_compatible, load_features

    cfg = cfg or Config()
    items = list(iter_dump(dump, speakers, utts, exclude_utts))
    if not items:
        raise StatsError(f"{dump}: no utterances selected in the dump")
    by_spk: Dict[str, list] = {}
    for spk, _, path in tqdm(items, unit="utt", desc="stats", disable=not progress,
                             file=sys.stderr, dynamic_ncols=True):
        feats = load_features(path)
        check_compatible(feats, cfg.feature, str(path))
        by_spk.setdefault(spk, []).append(feats)
    out = {}
    for spk, fl in by_spk.items():
        try:
            out[spk] = compute_speaker_stats(fl, cfg.feature.silence_db, cfg.stats.ms_fft,
                                             cfg.stats.resynth_utts, cfg.feature, jobs)
        except ValueError as e:
            raise StatsError(f"{Path(dump) / spk}: {e}") from None
    return out
