"""Objective evaluation of converted speech against natural recordings (``vawgan evaluate``).

Inputs are **wav files**: the natural target recordings (``--ref``) and one folder or
list file per system (``--system NAME=DIR``, repeated), matched by utterance name (the
file name without extension). Every file, natural or converted, goes through the same
code path: :func:`vawgan.features.analyze_file`, then

* per utterance, :func:`vawgan.uttmetrics.utterance_metrics` (the function behind every
  per-utterance figure of vawgan) against the reference of the same sentence (one DTW
  on the non-silent frames: MCD on c1..c24, F0 RMSE, log-F0 correlation, V/UV error)
  and the GV and MS distances of the utterance to the natural set;
* per system, the mean of those, and the GV distance and MS distance of the **set** of
  the system's utterances (c1..c39 of non-silent frames, every utterance weighing the
  same; :func:`vawgan.stats.set_gv_ms`, as in the speaker statistics) to the set of
  natural references of the same sentences.

Units, in the result and ``--out-json``, are those of :mod:`vawgan.uttmetrics`: ``mcd``
and ``ms_distance`` in dB, ``f0_rmse`` in Hz, ``gv_distance`` in log10 units and
``vuv_error`` a **fraction** (format version 2; version 1 files, which stored it in
percent, are refused by :func:`check_result`). The Markdown table shows V/UV error in percent
(column ``V/UV err [%]``, :data:`DISPLAY_SCALE`).

Pass the references themselves as a system (``--system natural=REFDIR``) for a sanity
row (all distances 0), and the vocoder resynthesis (``vawgan analysis-synthesis``) as
another for the vocoder floor. ``vawgan-convert --metrics-on output`` reports the same
per-utterance GV / MS figures as this command (both re-analyze the written wav).

Output: ``--out-json`` (everything, machine-readable) and ``--out-md`` (the table).
The command is :mod:`vawgan.commands.evaluate`.

Examples
--------
::

    vawgan evaluate --ref data/dev/TM1.list --system natural=data/dev/TM1.list \\
        --system vae=exp/convert/dev/vae/SF1-TM1 --system vawgan=exp/convert/dev/vawgan/SF1-TM1 \\
        --out-json results.json --out-md results.md --jobs 2
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from .config import FeatureConfig
from .corpus import collect_audio
from .errors import VawganError, file_error
from .features import Features, analyze_file
from .io import PathLike
from .stats import set_gv_ms, stat_frames

FORMAT = "vawgan-evaluate"
#: 2: ``vuv_error`` is a fraction (1: percent)
VERSION = 2
#: per-utterance metric keys averaged into the system summary
UTT_KEYS = ("mcd", "f0_rmse", "logf0_corr", "vuv_error", "gv_distance", "ms_distance")
#: (key, Markdown column header, format)
TABLE_COLUMNS = (("n_utts", "utts", "{:d}"), ("mcd", "MCD [dB]", "{:.2f}"),
                 ("f0_rmse", "F0 RMSE [Hz]", "{:.1f}"), ("logf0_corr", "log-F0 corr", "{:.3f}"),
                 ("vuv_error", "V/UV err [%]", "{:.1f}"), ("gv_distance", "GV dist", "{:.3f}"),
                 ("gv_distance_mcd", "GV dist (MCD dims)", "{:.3f}"),
                 ("ms_distance", "MS dist [dB]", "{:.2f}"),
                 ("spk_sim", "spk sim", "{:.3f}"), ("spk_id_acc", "spk ID [%]", "{:.1f}"))
#: columns shown only when some system has them (speaker similarity is optional)
OPTIONAL_COLUMNS = ("spk_sim", "spk_id_acc")
#: factor from a metric's unit in data to its unit in tables (V/UV error: fraction -> %)
DISPLAY_SCALE = {"vuv_error": 100.0, "spk_id_acc": 100.0}


def table_columns(result: Mapping[str, Any]) -> Tuple[Tuple[str, str, str], ...]:
    """:data:`TABLE_COLUMNS` less the optional ones no system of ``result`` has."""
    have = {k for s in result["systems"].values() for k in s["summary"]}
    return tuple(c for c in TABLE_COLUMNS if c[0] not in OPTIONAL_COLUMNS or c[0] in have)


def utterance_map(spec: PathLike, what: str) -> Dict[str, Path]:
    """``{utterance name: path}`` of a folder or list file (names must be unique)."""
    out: Dict[str, Path] = {}
    for p in collect_audio(spec, what):
        if p.stem in out:
            raise VawganError(f"{spec}: {what} has two files for utterance {p.stem} "
                              f"({out[p.stem]}, {p})")
        out[p.stem] = p
    return out


def _analyze(path: Path, cfg: FeatureConfig):
    try:
        return analyze_file(path, cfg)[0]
    except Exception as e:  # keep going; reported with the type
        return file_error(path, e)


def analyze_files(paths: List[Path], cfg: FeatureConfig, jobs: int = 1,
                  desc: str = "analyze") -> Dict[Path, Any]:
    """``{path: Features or VawganError}``, in parallel threads (WORLD releases the GIL)."""
    from joblib import Parallel, delayed
    from tqdm import tqdm

    uniq = list(dict.fromkeys(paths))
    par = Parallel(n_jobs=jobs, backend="threading", return_as="generator")
    gen = par(delayed(_analyze)(p, cfg) for p in uniq)
    return dict(zip(uniq, tqdm(gen, total=len(uniq), desc=desc, unit="file", disable=None)))


def _nanmean(values: List[float]) -> Optional[float]:
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    return float(v.mean()) if v.size else None


def evaluate(ref: Mapping[str, Path], systems: Mapping[str, Mapping[str, Path]],
             cfg: Optional[FeatureConfig] = None, jobs: int = 1, mcd_dims: int = 24,
             ms_fft: int = 256, features: Optional[Dict[Path, Any]] = None,
             speaker: Optional[Tuple[Mapping[str, Any], str]] = None,
             embeddings: Optional[Dict[Path, Any]] = None,
             ) -> Tuple[Dict[str, Any], Dict[Path, Any]]:
    """Evaluate systems against natural references.

    Parameters
    ----------
    ref : mapping
        ``{utterance name: natural recording}``.
    systems : mapping
        ``{system name: {utterance name: converted wav}}``.
    cfg : FeatureConfig, optional
        Analysis settings (default: the package defaults).
    jobs : int
        Parallel threads for analysis and comparison.
    mcd_dims, ms_fft : int
    features : dict, optional
        Already-analyzed ``{path: Features}`` (e.g. from :func:`analyze_files`).
    speaker : (centroids, target), optional
        Speaker similarity (:mod:`vawgan.speaker`): ``centroids`` ``{speaker: (256,)}``
        of the candidate speakers (:func:`vawgan.speaker.speaker_centroids`) and the
        ``target`` the systems converted to; adds ``spk_sim`` and ``spk_id`` per
        utterance and their means ``spk_sim`` and ``spk_id_acc`` per system.
    embeddings : dict, optional
        Already-made ``{path: embedding}`` (updated in place with the new ones).

    Returns
    -------
    result : dict
        JSON-ready: ``systems[name]["summary"]`` (means of the per-utterance metrics,
        ``gv_distance`` / ``ms_distance`` of the set, ``n_utts``),
        ``systems[name]["utterances"][utt]`` (per-utterance metrics, the dict of
        :func:`vawgan.uttmetrics.utterance_metrics`; ``vuv_error`` a fraction),
        ``systems[name]["gv"]`` (M,) set GV, ``natural_gv``, ``failures``.
    features : dict
        ``{path: Features or VawganError}`` of every file (for plots).
    """
    from joblib import Parallel, delayed
    from tqdm import tqdm

    from .metrics import gv_distance, ms_distance
    from .uttmetrics import utterance_metrics

    cfg = cfg or FeatureConfig()
    if not systems:
        raise VawganError("evaluate: no system given (--system NAME=DIR)")
    silence_db = cfg.silence_db
    wanted = list(ref.values()) + [p for s in systems.values() for p in s.values()]
    feats = dict(features or {})
    todo = [p for p in dict.fromkeys(wanted) if p not in feats]
    if todo:
        feats.update(analyze_files(todo, cfg, jobs))
    failures = sorted({str(e) for e in feats.values() if isinstance(e, VawganError)})
    good = {p for p, f in feats.items() if isinstance(f, Features)}

    result: Dict[str, Any] = {"format": FORMAT, "version": VERSION,
                              "feature_config": dataclasses.asdict(cfg), "silence_db": silence_db,
                              "mcd_dims": mcd_dims, "ms_fft": ms_fft, "systems": {},
                              "failures": failures}
    jobs_list, plan = [], {}
    for name, files in systems.items():
        utts = sorted(u for u in files if u in ref and files[u] in good and ref[u] in good)
        missing = sorted(set(files) - set(ref))
        if not utts:
            raise VawganError(f"evaluate: system {name} has no utterance that matches a readable "
                              f"reference (names compared without extension)")
        nat_gv, nat_ms = set_gv_ms([stat_frames(feats[ref[u]], silence_db) for u in utts],
                                   ms_fft)
        plan[name] = (utts, missing, nat_gv, nat_ms)
        jobs_list += [(name, u, feats[files[u]], feats[ref[u]], nat_gv, nat_ms) for u in utts]

    par = Parallel(n_jobs=jobs, backend="threading", return_as="generator")
    gen = par(delayed(utterance_metrics)(c, silence_db=silence_db, ms_fft=ms_fft, target_gv=g,
                                         target_ms=m, ref=r, mcd_dims=mcd_dims)
              for _, _, c, r, g, m in jobs_list)
    per: Dict[str, Dict[str, Dict[str, float]]] = {name: {} for name in systems}
    for (name, u, *_), out in zip(jobs_list, tqdm(gen, total=len(jobs_list), desc="compare",
                                                  unit="pair", disable=None)):
        per[name][u] = out

    if speaker is not None:
        from .speaker import embed_files, similarity

        centroids, target = speaker
        emb = embeddings if embeddings is not None else {}
        need = [files[u] for name, files in systems.items() for u in plan[name][0]]
        emb.update(embed_files([p for p in dict.fromkeys(need) if p not in emb]))
        for name, files in systems.items():
            for u in plan[name][0]:
                e = emb[files[u]]
                if isinstance(e, np.ndarray):
                    per[name][u].update(similarity(e, centroids, target))
                else:
                    failures.append(f"speaker embedding: {e}")
        result["speaker_target"] = target
        result["speaker_candidates"] = list(centroids)

    for name, files in systems.items():
        utts, missing, nat_gv, nat_ms = plan[name]
        gv, ms = set_gv_ms([stat_frames(feats[files[u]], silence_db) for u in utts], ms_fft)
        summary: Dict[str, Any] = {"n_utts": len(utts)}
        for k in UTT_KEYS[:4]:
            summary[k] = _nanmean([per[name][u].get(k) for u in utts])
        summary["gv_distance"] = gv_distance(gv, nat_gv)
        # over the dims MCD measures too (c1..c24): the GV of the higher orders moves
        # GVD at no MCD cost
        summary["gv_distance_mcd"] = gv_distance(gv[:mcd_dims], nat_gv[:mcd_dims])
        summary["ms_distance"] = ms_distance(ms, nat_ms, n_fft=ms_fft, precomputed=True)
        if speaker is not None:
            summary["spk_sim"] = _nanmean([per[name][u].get("spk_sim") for u in utts])
            summary["spk_id_acc"] = _nanmean([per[name][u].get("spk_id") for u in utts])
        unread = sorted(u for u in files if u in ref and u not in utts)
        result["systems"][name] = {
            "summary": summary, "utterances": {u: per[name][u] for u in utts},
            "gv": gv.tolist(), "natural_gv": nat_gv.tolist(),
            "without_reference": missing, "unreadable": unread,
            "files": {u: str(files[u]) for u in utts}}
    return result, feats


def format_metric(key: str, value, fmt: str) -> str:
    """One table cell: ``value`` in its display unit (:data:`DISPLAY_SCALE`), or "n/a".

    Parameters
    ----------
    key : str
        Metric key (``vuv_error`` is a fraction in data, shown in percent).
    value : float, int or None
        In the unit of the data (:mod:`vawgan.uttmetrics`); None or NaN gives "n/a".
    fmt : str
        ``str.format`` pattern, e.g. ``"{:.2f}"``.
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return fmt.format(value * DISPLAY_SCALE[key] if key in DISPLAY_SCALE else value)


def check_result(result: Any) -> Mapping[str, Any]:
    """``result`` if it is an :func:`evaluate` result of this format version.

    Raises
    ------
    VawganError
        Not an evaluate result, or another format version (version 1 stored
        ``vuv_error`` in percent: re-run ``vawgan evaluate``).
    """
    if not isinstance(result, Mapping) or result.get("format") != FORMAT:
        raise VawganError("not a 'vawgan evaluate' result")
    version = result.get("version")
    if version != VERSION:
        raise VawganError(f"'vawgan evaluate' result of format version {version!r}; this vawgan "
                          f"reads version {VERSION} (re-run vawgan evaluate)")
    return result


def markdown_table(result: Mapping[str, Any]) -> str:
    """The per-system metric table of an :func:`evaluate` result, in Markdown."""
    cols = table_columns(result)
    head = "| system | " + " | ".join(h for _, h, _ in cols) + " |"
    sep = "| --- |" + " ---: |" * len(cols)
    rows = [head, sep]
    for name, s in result["systems"].items():
        summ = s["summary"]
        rows.append(f"| {name} | " + " | ".join(format_metric(k, summ.get(k), f)
                                                for k, _, f in cols) + " |")
    note = (f"\nMCD on c1..c{result['mcd_dims']} after DTW, F0 metrics on frames voiced in both; "
            f"GV / MS distances of the set of utterances (c1..c39, non-silent frames) to the "
            f"natural references of the same sentences (MS FFT {result['ms_fft']} frames).")
    if "speaker_target" in result:
        note += (f" Speaker similarity: cosine of each utterance's speaker embedding to "
                 f"{result['speaker_target']}'s centroid; ID: how often "
                 f"{result['speaker_target']} is the nearest of "
                 f"{len(result['speaker_candidates'])} speakers' centroids.")
    note += "\n"
    return "\n".join(rows) + "\n" + note
