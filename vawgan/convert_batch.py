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
from .errors import VawganError
from .io import PathLike, atomic_write_text
from .parallel import worker_count

SUMMARY_NAME = "convert.json"
BACKENDS = ("threads", "processes")


def plan_batch(files: Sequence[PathLike], out: PathLike, overwrite: bool = False,
               where: str = "inputs") -> Tuple[List[Tuple[Path, Path]], List[str]]:
    """Output paths of a batch: ``<out>/<input name>.wav``.

    Parameters
    ----------
    files : sequence of path
        The inputs (e.g. :func:`vawgan.corpus.collect_audio`).
    out : path
        The output folder.
    overwrite : bool
        Convert again inputs whose output exists (default: skip them).
    where : str
        Names the inputs in the error message (e.g. the ``--in`` list file).

    Returns
    -------
    todo : list of (input, output)
    skipped : list of str
        Outputs that exist (not converted again).

    Raises
    ------
    VawganError
        Two inputs have the same name (their outputs would collide).
    """
    out = Path(out)
    seen: Dict[str, Path] = {}
    for f in map(Path, files):
        if f.stem in seen:
            raise VawganError(f"{where}: two inputs named {f.stem} ({seen[f.stem]}, {f}); "
                              "outputs would collide")
        seen[f.stem] = f
    todo, skipped = [], []
    for f in map(Path, files):
        dest = out / f"{f.stem}.wav"
        if dest.exists() and not overwrite:
            skipped.append(str(dest))
        else:
            todo.append((f, dest))
    return todo, skipped


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
        gvd = [r["metrics"]["gv_distance"] for r in self.converted
               if "gv_distance" in r["metrics"]]
        msd = [r["metrics"]["ms_distance"] for r in self.converted
               if "ms_distance" in r["metrics"]]
        if gvd:
            lines.append(f"mean GV distance {np.mean(gvd):.4g}, mean MS distance "
                         f"{np.mean(msd) if msd else float('nan'):.4g} "
                         f"(to {self.target}'s natural statistics)")
        return "\n".join(lines)


_WORKER_CONVERTERS: Dict[tuple, Converter] = {}


def _worker_converter(key: tuple) -> Converter:
    """The Converter in a worker process, made once per process from (model, set-up)."""
    if key not in _WORKER_CONVERTERS:
        from .bundle import load_bundle

        model, target, source, postfilter, pf_alpha = key
        _WORKER_CONVERTERS[key] = Converter(load_bundle(Path(model)), target, source,
                                            postfilter, pf_alpha)
    return _WORKER_CONVERTERS[key]


def _convert_task(conv_or_key, in_path: Path, out_path: Path, metrics_on: str) -> dict:
    conv = conv_or_key if isinstance(conv_or_key, Converter) else _worker_converter(conv_or_key)
    try:
        info = conv.convert_file(in_path, out_path, metrics_on=metrics_on)
        return {"input": str(in_path), "output": str(out_path), "ok": True,
                "metrics": info["metrics"]}
    except VawganError as e:
        return {"input": str(in_path), "ok": False, "error": str(e)}
    except Exception as e:  # keep the batch going; the report shows the type
        return {"input": str(in_path), "ok": False,
                "error": f"{in_path}: internal error {type(e).__name__}: {e}"}


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
        From :func:`plan_batch`.
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
    from contextlib import nullcontext

    from joblib import Parallel, delayed
    from threadpoolctl import threadpool_limits
    from tqdm import tqdm

    if not isinstance(jobs, int) or jobs == 0 or jobs < -1:
        raise ValueError(f"jobs must be a positive integer or -1, got {jobs!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    processes = backend == "processes" and jobs != 1
    if processes and model is None:
        raise ValueError("backend 'processes' needs the bundle's path (model=...)")
    if processes:  # at most one process per core and per file
        jobs = worker_count(jobs, len(todo))
        processes = jobs != 1
    out = Path(out)
    handle: Any = converter
    if processes:
        handle = (str(model), converter.target, converter.source, converter.postfilter,
                  converter.pf_alpha)
    t0 = time.perf_counter()
    results = []
    if todo:
        # parallel workers: one BLAS thread each (loky limits its processes itself;
        # threads would otherwise each fan out over every core)
        limit = threadpool_limits(1, user_api="blas") if jobs != 1 else nullcontext()
        with limit:
            par = Parallel(n_jobs=jobs, backend="loky" if processes else "threading",
                           return_as="generator_unordered")
            gen = par(delayed(_convert_task)(handle, Path(f), Path(o), metrics_on)
                      for f, o in todo)
            disable = None if progress is None else not progress
            for r in tqdm(gen, total=len(todo), desc=f"convert -> {converter.target}",
                          unit="file", disable=disable):
                results.append(r)
    result = BatchResult(
        out=out, model="" if model is None else str(model), kind=converter.bundle.kind,
        target=converter.target, source=converter.source or "input",
        postfilter=converter.postfilter,
        converted=sorted((r for r in results if r["ok"]), key=lambda r: r["input"]),
        skipped=list(skipped),
        failed=[{"input": r["input"], "error": r["error"]}
                for r in sorted((r for r in results if not r["ok"]), key=lambda r: r["input"])],
        seconds=time.perf_counter() - t0)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / SUMMARY_NAME, json.dumps(result.to_dict(), indent=1))
    return result
