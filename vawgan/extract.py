"""``vawgan extract``: a corpus of audio files -> a dump of feature files.

Corpus layout: ``<root>/<speaker>/<utt>.<ext>`` where ``<ext>`` is anything soundfile
reads (wav, flac, ogg, aiff, ...; :func:`vawgan.corpus.list_corpus`). Every utterance goes through the one feature
pipeline, :func:`vawgan.features.analyze_file`, with the speaker's f0 search range
(``FeatureConfig.for_speaker``; ranges from ``--f0-dir``, see :mod:`vawgan.f0`), and
is written with :func:`vawgan.features.save_features` (atomic) to
``<dump>/<speaker>/<utt>.npz``.

* Parallel: joblib processes (``--jobs``), or a Dask distributed cluster through
  joblib's dask backend (``--scheduler tcp://host:port``; the workers must see the
  corpus and the dump at the same paths).
* Resumable: an utterance whose npz exists, loads, was made with a compatible
  configuration (:func:`vawgan.features.check_compatible`) and with the same f0 search
  range is skipped; a corrupt or partial one is redone.
* A bad input file is reported on one line and skipped; a summary and the list of
  failures are printed at the end. The command fails only when nothing is in the dump.
* ``<dump>/manifest.json`` (written atomically) lists the utterances and failures::

    {"feature_config": {...}, "f0_ranges": {spk: [floor, ceil]},
     "utterances": [{"speaker", "utt", "path" (relative to the dump), "source", "n_frames"}],
     "failures": [{"speaker", "utt", "source", "error"}]}

Utterance lists (``--utts-file``, also used by ``vawgan stats`` and training) are
text files with one ``speaker/utt`` per line (:func:`vawgan.corpus.read_utt_list`).
:func:`iter_dump` lists the utterances of a dump for the later stages.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Tuple, Union

from .config import Config, FeatureConfig
from .corpus import UttKey, list_corpus, listdir
from .errors import CorpusError, FeatureError, VawganError
from .io import PathLike, atomic_write_text
from .parallel import worker_count

MANIFEST = "manifest.json"
#: how long to try to connect to a Dask scheduler
DASK_TIMEOUT = "10s"


# --------------------------------------------------------------------------- one utterance
def is_done(dest: PathLike, cfg: FeatureConfig) -> Optional[int]:
    """Frame count if ``dest`` is a valid feature file made with ``cfg``, else None.

    Valid means: it loads, :func:`~vawgan.features.check_compatible` accepts it, and it
    was analysed with the same f0 method and search range.
    """
    from .features import check_compatible, load_feature_meta, load_features

    dest = Path(dest)
    if not dest.is_file():
        return None
    try:
        feats = load_features(dest)
        check_compatible(feats, cfg, str(dest))
        meta = load_feature_meta(dest)
    except (FeatureError, OSError, ValueError, KeyError):
        return None
    if (meta.get("f0_method") != cfg.f0_method
            or meta.get("f0_floor") != cfg.f0_floor or meta.get("f0_ceil") != cfg.f0_ceil):
        return None
    return feats.n_frames


def extract_one(source: PathLike, dest: PathLike, cfg: FeatureConfig,
                speaker: str = "", utt: str = "") -> dict:
    """Analyse one file and save it; never raises for a bad input.

    Returns
    -------
    dict
        ``{speaker, utt, source, ok, n_frames | error, warnings}``.
    """
    from .features import read_input, save_features

    out = dict(speaker=speaker, utt=utt, source=str(source))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        try:
            feats, fs_orig = read_input(source, cfg)  # audio is analysed
            save_features(dest, feats, speaker=speaker, utt=utt, source=str(source),
                          fs_orig=fs_orig, f0_method=cfg.f0_method, f0_floor=cfg.f0_floor,
                          f0_ceil=cfg.f0_ceil)
            out.update(ok=True, n_frames=feats.n_frames)
        except VawganError as e:
            out.update(ok=False, error=str(e))
        except Exception as e:  # an unexpected failure of one file must not stop the corpus
            msg = str(e).splitlines()[0][:200] if str(e) else ""
            out.update(ok=False, error=f"{source}: {type(e).__name__}: {msg}")
    out["warnings"] = [str(w.message) for w in caught]
    return out


# --------------------------------------------------------------------------- the corpus
@dataclass
class ExtractResult:
    """What :func:`extract_corpus` did."""

    out: Path  #: the dump directory
    utterances: List[dict] = field(default_factory=list)  #: manifest entries now in the dump
    extracted: List[UttKey] = field(default_factory=list)  #: newly extracted
    skipped: List[UttKey] = field(default_factory=list)  #: already done (resumed)
    failures: List[dict] = field(default_factory=list)  #: {speaker, utt, source, error}
    warnings: List[str] = field(default_factory=list)  #: warnings of the analysis, one line each

    @property
    def manifest(self) -> Path:
        return self.out / MANIFEST

    def summary(self) -> str:
        return (f"{len(self.utterances)} utterances in {self.out}: {len(self.extracted)} "
                f"extracted, {len(self.skipped)} already done, {len(self.failures)} failed")


def _dask_client(address: str):
    try:
        from distributed import Client
    except ImportError:
        raise VawganError("--scheduler needs Dask distributed: "
                          "pip install 'dask[distributed]'") from None
    try:
        return Client(address, timeout=DASK_TIMEOUT)
    except Exception as e:  # OSError, TimeoutError, ValueError for a bad address
        msg = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise VawganError(f"cannot reach Dask scheduler {address} ({msg})") from None


def _run_parallel(tasks: List[tuple], jobs: int, scheduler: Optional[str], progress: bool,
                  on_result) -> None:
    import joblib
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), unit="utt", desc="extract", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)
    try:
        if not tasks:
            return
        if scheduler:
            client = _dask_client(scheduler)
            try:
                with joblib.parallel_backend("dask"):
                    gen = joblib.Parallel(return_as="generator_unordered")(
                        joblib.delayed(extract_one)(*t) for t in tasks)
                    for res in gen:
                        on_result(res, bar)
            finally:
                client.close()
            return
        jobs = worker_count(jobs, len(tasks))  # processes: at most one per core and task
        if jobs == 1:
            for t in tasks:
                on_result(extract_one(*t), bar)
        else:
            gen = joblib.Parallel(n_jobs=jobs, return_as="generator_unordered")(
                joblib.delayed(extract_one)(*t) for t in tasks)
            for res in gen:
                on_result(res, bar)
    finally:
        bar.close()


def extract_corpus(corpus: PathLike, out: PathLike, cfg: Union[Config, FeatureConfig, None] = None,
                   speakers: Optional[Iterable[str]] = None, jobs: int = 1,
                   scheduler: Optional[str] = None,
                   f0_ranges: Optional[Dict[str, Tuple[float, float]]] = None,
                   utts: Optional[Iterable[UttKey]] = None, progress: bool = True,
                   log=None) -> ExtractResult:
    """Extract the features of a corpus into a dump (see the module docstring).

    Parameters
    ----------
    corpus, out : path
    cfg : Config or FeatureConfig, optional
    speakers : iterable of str, optional
    jobs : int
        joblib workers (-1 = all cores); ignored with ``scheduler``.
    scheduler : str, optional
        Dask scheduler address, e.g. ``tcp://10.0.0.1:8786``.
    f0_ranges : dict speaker -> (floor, ceil), optional
        Per-speaker f0 search ranges (:func:`vawgan.f0.load_f0_ranges`); other speakers
        use the global range of ``cfg``.
    utts : iterable of (speaker, utt), optional
    progress : bool
        Show a tqdm bar (on stderr).
    log : callable(str), optional
        Called with each one-line report (a failure, or ``warning: ...``) as it
        happens, e.g. ``tqdm.write`` (what ``vawgan extract`` passes); default: none.
        Either way failures and warnings are in the result.

    Returns
    -------
    ExtractResult
    """
    if isinstance(cfg, Config):
        cfg = cfg.feature
    cfg = cfg or FeatureConfig()
    if not isinstance(jobs, int) or jobs == 0 or jobs < -1:
        raise ValueError(f"jobs must be a positive integer or -1, got {jobs!r}")
    f0_ranges = dict(f0_ranges or {})
    out = Path(out)

    def say(msg: str) -> None:
        if log is not None:
            log(msg)

    items, failures = list_corpus(corpus, speakers, utts)
    for f in failures:
        say(f["error"])
    spk_cfg = {spk: cfg.for_speaker(*f0_ranges[spk]) if spk in f0_ranges else cfg
               for spk in {s for s, _, _ in items}}
    result = ExtractResult(out=out, failures=failures)
    entries: Dict[UttKey, dict] = {}
    tasks = []
    for spk, utt, src in items:
        dest = out / spk / f"{utt}.npz"
        n = is_done(dest, spk_cfg[spk])
        if n is not None:
            result.skipped.append((spk, utt))
            entries[(spk, utt)] = dict(speaker=spk, utt=utt, path=f"{spk}/{utt}.npz",
                                       source=str(src), n_frames=n)
        else:
            tasks.append((str(src), str(dest), spk_cfg[spk], spk, utt))

    def on_result(res: dict, bar) -> None:
        for w in res.get("warnings", []):
            result.warnings.append(w)
            say(f"warning: {w}")
        key = (res["speaker"], res["utt"])
        if res["ok"]:
            result.extracted.append(key)
            entries[key] = dict(speaker=key[0], utt=key[1], path=f"{key[0]}/{key[1]}.npz",
                                source=res["source"], n_frames=res["n_frames"])
        else:
            say(res["error"])
            result.failures.append({k: res[k] for k in ("speaker", "utt", "source", "error")})
        bar.update(1)

    try:
        _run_parallel(tasks, jobs, scheduler, progress, on_result)
    finally:  # also on Ctrl-C: what was done stays listed
        _write_manifest(result, entries, cfg, f0_ranges)
    return result


def _write_manifest(result: ExtractResult, entries: Dict[UttKey, dict], cfg: FeatureConfig,
                    f0_ranges: Dict[str, Tuple[float, float]]) -> None:
    feature_config = dataclasses.asdict(cfg)
    ranges = {k: [float(a), float(b)] for k, (a, b) in sorted(f0_ranges.items())}
    merged = dict(entries)
    old_path = result.out / MANIFEST
    try:  # keep what an earlier run with the same configuration put in the dump
        old = json.loads(old_path.read_text(encoding="utf-8"))
        if old.get("feature_config") == feature_config:
            for e in old.get("utterances", []):
                key = (e["speaker"], e["utt"])
                if key not in merged and (result.out / e["path"]).is_file():
                    merged[key] = e
                    old_range = old.get("f0_ranges", {}).get(e["speaker"])
                    if old_range is not None:
                        ranges.setdefault(e["speaker"], old_range)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    failed = {(f["speaker"], f["utt"]) for f in result.failures}
    result.utterances = [merged[k] for k in sorted(merged) if k not in failed]
    doc = dict(feature_config=feature_config, f0_ranges=ranges,
               utterances=result.utterances, failures=result.failures)
    result.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(old_path, json.dumps(doc, indent=1) + "\n")


# --------------------------------------------------------------------------- reading a dump
def iter_dump(dump: PathLike, speakers: Optional[Iterable[str]] = None,
              utts: Optional[Iterable[UttKey]] = None,
              exclude_utts: Optional[Iterable[str]] = None) -> Iterator[Tuple[str, str, Path]]:
    """List the utterances of a dump as ``(speaker, utt, npz path)``, sorted.

    Uses ``manifest.json`` when present, else scans ``<dump>/<speaker>/*.npz``.

    Parameters
    ----------
    dump : path
    speakers : iterable of str, optional
        Keep only these speakers.
    utts : iterable of (speaker, utt), optional
        Keep only these utterances (e.g. from :func:`read_utt_list`).
    exclude_utts : iterable of str, optional
        Utterance ids to leave out for every speaker (e.g. ``parse_utt_spec(["100151-100162"])``).
    """
    dump = Path(dump)
    manifest = dump / MANIFEST
    if manifest.is_file():
        try:
            doc = json.loads(manifest.read_text(encoding="utf-8"))
            listed = [(e["speaker"], e["utt"], dump / e["path"]) for e in doc["utterances"]]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CorpusError(f"{manifest}: corrupt dump manifest ({type(e).__name__})") from None
    else:
        listed = [(d.name, p.stem, p) for d in listdir(dump, "dump directory")
                  if d.is_dir() and not d.name.startswith(".")
                  for p in sorted(d.glob("*.npz")) if not p.name.startswith(".")]
    spk_set = None if speakers is None else set(speakers)
    utt_set = None if utts is None else set(utts)
    excl = set(exclude_utts or ())
    for spk, utt, path in sorted(listed):
        if spk_set is not None and spk not in spk_set:
            continue
        if utt_set is not None and (spk, utt) not in utt_set:
            continue
        if utt in excl:
            continue
        yield spk, utt, path
