"""Many files with one model bundle, in parallel (joblib): the library of ``vawgan convert``.

Each file goes through :meth:`vawgan.convert.Converter.convert_file` (the pipeline of
``vawgan-convert``) with one Converter, so the target speaker and the source
statistics are resolved once per batch; a file that fails is reported and the batch
goes on; outputs that exist are skipped unless ``overwrite`` (so a killed batch
resumes). ``backend="threads"`` (default) shares the loaded bundle between threads
(WORLD and the numpy matrix products release the GIL); ``"processes"`` loads it once
per worker. ``<out>/convert.json`` (written atomically) records the batch.

Examples
--------
Shell (:mod:`vawgan.commands.convert`)::

    vawgan convert --model exp/vawgan.pt --source SF1 --target TM1 --in data/dev/SF1.list \\
        --out exp/convert/SF1-TM1 --jobs 2

Python::

    from vawgan.bundle import load_bundle
    from vawgan.convert import Converter
    from vawgan.convert_batch import convert_batch, plan_batch
    from vawgan.corpus import collect_audio
    todo, skipped = plan_batch(collect_audio("data/dev/SF1.list"), "exp/convert/SF1-TM1")
    conv = Converter(load_bundle("exp/vawgan.pt"), target="TM1", source="SF1")
    result = convert_batch(conv, todo, "exp/convert/SF1-TM1", skipped, jobs=2)
    print(result.summary())
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .convert import Converter
from .corpus import plan_batch  # noqa: F401 (part of this module's API)
from .errors import file_error
from .io import PathLike, atomic_write_text
from .parallel import worker_count

SUMMARY_NAME = "convert.json"
BACKENDS = ("threads", "processes")


@dataclass
class BatchResult:
    """What :func:`convert_batch` did; :meth:`to_dict` is ``convert.json``."""

    out: Path  #: the output folder
    model: str  #: the bundle's path (or "" when not known)
    kind: str  #: the bundle's kind ("vae", "vawgan")
    target: str
    source: str  #: training speaker, or "input" (statistics of each input)
    postfilter: str
    converted: List[dict] = field(default_factory=list)  #: {input, output, ok, metrics}
    skipped: List[str] = field(default_factory=list)  #: outputs that existed
    failed: List[dict] = field(default_factory=list)  #: {input, error}
    seconds: float = 0.0  #: wall time of the conversions

    def to_dict(self) -> Dict[str, Any]:
        """The JSON document of ``convert.json``."""
        return {"model": self.model, "kind": self.kind, "target": self.target,
                "source": self.source, "postfilter": self.postfilter,
                "converted": self.converted, "skipped": self.skipped, "failed": self.failed,
                "seconds": round(self.seconds, 3)}

    def summary(self) -> str:
        """One line of counts, and one of the mean GV / MS distances when known."""
        lines = [f"{len(self.converted)} converted, {len(self.skipped)} skipped (output exists), "
                 f"{len(self.failed)} failed in {self.seconds:.1f} s -> {self.out}"]
        def means(key):
            gvd = [r[key]["gv_distance"] for r in self.converted
                   if "gv_distance" in r.get(key, {})]
            msd = [r[key]["ms_distance"] for r in self.converted
                   if "ms_distance" in r.get(key, {})]
            return (np.mean(gvd) if gvd else None), (np.mean(msd) if msd else float("nan"))

        gvd, msd = means("metrics")
        if gvd is not None:
            line = (f"mean GV distance {gvd:.4g}, mean MS distance {msd:.4g} "
                    f"(to {self.target}'s natural statistics)")
            before, before_ms = means("metrics_before_postfilter")
            if self.postfilter != "none" and before is not None:
                line += (f"; before the {self.postfilter} postfilter {before:.4g} / "
                         f"{before_ms:.4g}")
                if self.postfilter == "gv":
                    line += (" (the orders a GV postfilter changes have GVD ~0 after it: it "
                             "sets these very statistics)")
            lines.append(line)
        return "\n".join(lines)


_WORKER_CONVERTERS: Dict[tuple, Converter] = {}


def _worker_converter(key: tuple) -> Converter:
    """The Converter in a worker process, made once per process from (model, set-up)."""
    if key not in _WORKER_CONVERTERS:
        from .bundle import load_bundle

        model, target, source, postfilter, pf_alpha, pf_first = key
        _WORKER_CONVERTERS[key] = Converter(load_bundle(Path(model)), target, source,
                                            postfilter, pf_alpha, pf_first)
    return _WORKER_CONVERTERS[key]


def _convert_task(handles: Sequence, in_path: Path, jobs: Sequence[Tuple[int, Path]],
                  metrics_on: str) -> List[Tuple[int, dict]]:
    """One input to every set-up that wants it: read or analysed once, then converted
    and written per set-up. Returns ``(set-up index, record)`` per output."""
    from .features import read_input

    convs = [h if isinstance(h, Converter) else _worker_converter(h) for h in handles]
    out: List[Tuple[int, dict]] = []
    try:
        feats, fs_orig = read_input(in_path, convs[jobs[0][0]].bundle.config.feature)
    except Exception as e:
        err = _failed(in_path, e)
        return [(k, err) for k, _ in jobs]
    for k, out_path in jobs:
        try:
            info = convs[k].convert_file(in_path, out_path, metrics_on=metrics_on,
                                         feats=feats, fs_orig=fs_orig)
            out.append((k, {"input": str(in_path), "output": str(out_path), "ok": True,
                            "metrics": info["metrics"],
                            "metrics_before_postfilter": info["metrics_before_postfilter"]}))
        except Exception as e:  # keep the batch going; the report shows the type
            out.append((k, _failed(in_path, e)))
    return out


def _failed(in_path: Path, e: Exception) -> dict:
    return {"input": str(in_path), "ok": False, "error": str(file_error(in_path, e))}


def convert_batch(converter: Converter, todo: Sequence[Tuple[PathLike, PathLike]],
                  out: PathLike, skipped: Sequence[str] = (), jobs: int = 1,
                  backend: str = "threads", metrics_on: str = "features",
                  model: Optional[PathLike] = None, progress: Optional[bool] = None
                  ) -> BatchResult:
    """Convert ``todo`` in parallel and write ``<out>/convert.json``.

    Parameters
    ----------
    converter : Converter
        The set-up (bundle, target, source, postfilter), shared by the threads.
    todo : sequence of (input, output)
        From :func:`plan_batch`. An input is an audio file, or a feature file of a
        dump (``.npz``), which is read instead of analysed.
    out : path
        The output folder (created).
    skipped : sequence of str
        Outputs left as they are (recorded in the summary).
    jobs : int
        Parallel jobs (-1 = all cores).
    backend : {"threads", "processes"}
        ``processes`` needs ``model``, which each worker loads once.
    metrics_on : {"features", "output", "none"}
    model : path, optional
        The bundle's file (recorded in the summary).
    progress : bool, optional
        tqdm bar; None shows it on a terminal only.

    Returns
    -------
    BatchResult
        Converted files sorted by input; failures do not raise.
    """
    return convert_batches([converter], [todo], [out], [skipped], jobs, backend,
                           metrics_on, model, progress)[0]


def convert_batches(converters: Sequence[Converter],
                    todos: Sequence[Sequence[Tuple[PathLike, PathLike]]],
                    outs: Sequence[PathLike], skipped: Sequence[Sequence[str]] = (),
                    jobs: int = 1, backend: str = "threads", metrics_on: str = "features",
                    model: Optional[PathLike] = None, progress: Optional[bool] = None
                    ) -> List[BatchResult]:
    """Several set-ups of one bundle (e.g. several targets) over the same inputs, each
    input analysed once: :func:`convert_batch` per set-up, without repeating the WORLD
    analysis of an input for every target.

    Parameters
    ----------
    converters : sequence of Converter
        Set-ups of bundles with the same feature settings (``config.feature``).
    todos, outs, skipped : sequences, one item per converter
        As ``todo``, ``out``, ``skipped`` of :func:`convert_batch`.
    jobs, backend, metrics_on, model, progress
        As for :func:`convert_batch` (``model``: the bundle of every converter).

    Returns
    -------
    list of BatchResult
        One per converter (each also written as ``<out>/convert.json``).
    """
    from contextlib import nullcontext

    from joblib import Parallel, delayed
    from threadpoolctl import threadpool_limits
    from tqdm import tqdm

    if not isinstance(jobs, int) or jobs == 0 or jobs < -1:
        raise ValueError(f"jobs must be a positive integer or -1, got {jobs!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    n = len(converters)
    if not n or len(todos) != n or len(outs) != n or (skipped and len(skipped) != n):
        raise ValueError("convert_batches: one todo list and one output folder per converter")
    feat_cfgs = {repr(c.bundle.config.feature) for c in converters}
    if len(feat_cfgs) != 1:
        raise ValueError("convert_batches: the converters' bundles have different feature "
                         "settings; convert them separately")
    skipped = skipped or [()] * n
    # per input, the set-ups that want it (in first-seen order of the inputs)
    plan: Dict[Path, List[Tuple[int, Path]]] = {}
    for k, todo in enumerate(todos):
        for f, o in todo:
            plan.setdefault(Path(f), []).append((k, Path(o)))
    processes = backend == "processes" and jobs != 1
    if processes and model is None:
        raise ValueError("backend 'processes' needs the bundle's path (model=...)")
    if processes:  # at most one process per core and per input
        jobs = worker_count(jobs, len(plan))
        processes = jobs != 1
    handles: List[Any] = list(converters)
    if processes:
        handles = [(str(model), c.target, c.source, c.postfilter, c.pf_alpha, c.pf_first)
                   for c in converters]
    t0 = time.perf_counter()
    results: List[List[dict]] = [[] for _ in range(n)]
    if plan:
        # parallel workers: one BLAS thread each (loky limits its processes itself;
        # threads would otherwise each fan out over every core)
        limit = threadpool_limits(1, user_api="blas") if jobs != 1 else nullcontext()
        targets = ", ".join(dict.fromkeys(c.target for c in converters))
        with limit:
            par = Parallel(n_jobs=jobs, backend="loky" if processes else "threading",
                           return_as="generator_unordered")
            gen = par(delayed(_convert_task)(handles, f, js, metrics_on)
                      for f, js in plan.items())
            disable = None if progress is None else not progress
            for recs in tqdm(gen, total=len(plan), desc=f"convert -> {targets}",
                             unit="file", disable=disable):
                for k, r in recs:
                    results[k].append(r)
    seconds = time.perf_counter() - t0
    out_results = []
    for k, conv in enumerate(converters):
        res = results[k]
        result = BatchResult(
            out=Path(outs[k]), model="" if model is None else str(model),
            kind=conv.bundle.kind, target=conv.target, source=conv.source or "input",
            postfilter=conv.postfilter,
            converted=sorted((r for r in res if r["ok"]), key=lambda r: r["input"]),
            skipped=list(skipped[k]),
            failed=[{"input": r["input"], "error": r["error"]}
                    for r in sorted((r for r in res if not r["ok"]), key=lambda r: r["input"])],
            seconds=seconds)
        result.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(result.out / SUMMARY_NAME, json.dumps(result.to_dict(), indent=1))
        out_results.append(result)
    return out_results
