"""Analysis-synthesis: resynthesize a file through the features (the vocoder floor).

The input goes through exactly the conversion path minus the model:
``analyze_file`` (WORLD, mel-cepstrum c0..c39, coded aperiodicity) -> ``synthesize``
-> ``write_audio``; the written file is then analyzed again with the same
``analyze_file`` and compared with the input's features. The figures (GV distance, MS
distance, MCD, F0 RMSE, log-F0 correlation, V/UV error) are the floor that no
conversion through these features can go below.

The command is :mod:`vawgan.commands.analysis_synthesis`.

Example
-------
    vawgan analysis-synthesis SF1/100001.wav /tmp/SF1_100001_anasyn.wav --json
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from .audio import check_output_path
from .config import FeatureConfig
from .errors import AudioError
from .io import PathLike


def analysis_synthesis(in_path: PathLike, out_path: PathLike,
                       cfg: Optional[FeatureConfig] = None, sr: Optional[int] = None,
                       ms_fft: int = 256, mcd_dims: int = 24,
                       metrics: bool = True) -> Dict[str, object]:
    """Analyze, resynthesize, write, re-analyze and compare one file.

    Parameters
    ----------
    in_path : path
        Any audio file soundfile reads, or a feature file of a dump (``.npz`` from
        ``vawgan extract``: its analysis is read, not repeated).
    out_path : path
        ``.wav`` or ``.flac``; written atomically; must not be the input.
    cfg : FeatureConfig, optional
        Analysis settings (the working rate ``cfg.fs``, f0 range, ...).
    sr : int, optional
        Output sample rate; default the input file's own rate.
    ms_fft : int
        Modulation-spectrum FFT length (frames).
    mcd_dims : int
        MCD over c1..c_mcd_dims.
    metrics : bool
        False: write the resynthesis only (no re-analysis; the metric keys are absent).

    Returns
    -------
    dict
        ``input``, ``output``, ``fs_in``, ``fs_out``, ``duration_s``, ``n_frames``
        (input frames), ``n_nonsilent`` and the metrics of the resynthesis against the
        input: ``gv_distance`` (log10 units), ``ms_distance`` (dB), ``mcd`` (dB),
        ``f0_rmse`` (Hz), ``logf0_corr``, ``vuv_error`` (fraction), ``n_aligned``
        (DTW path length): :func:`vawgan.uttmetrics.utterance_metrics` of the
        re-analysis, with the input as reference and the input's own GV and MS
        (:func:`vawgan.stats.set_gv_ms`) as natural statistics. GV and MS are over
        c1..cM of the non-silent frames.
    """
    from .audio import resample, write_audio
    from .features import analyze_file, read_input, synthesize
    from .stats import set_gv_ms, stat_frames
    from .uttmetrics import utterance_metrics

    cfg = cfg or FeatureConfig()
    in_path, out_path = Path(in_path), Path(out_path)
    check_output_path(in_path, out_path)
    if sr is not None and not 8000 <= int(sr) <= 192000:
        raise AudioError(out_path, f"output rate {sr} Hz: use 8000..192000")
    feats, fs_in = read_input(in_path, cfg)
    fs_out = int(sr) if sr is not None else int(fs_in)
    y = resample(synthesize(feats), feats.fs, fs_out)
    try:
        write_audio(out_path, y, fs_out)
    except OSError as e:
        raise AudioError(out_path, f"cannot write ({e.strerror or type(e).__name__})") from None
    written = {"input": str(in_path), "output": str(out_path), "fs_in": int(fs_in),
               "fs_out": fs_out, "duration_s": round(len(y) / fs_out, 4),
               "n_frames": feats.n_frames}
    if not metrics:
        return written
    resyn, _ = analyze_file(out_path, cfg)

    body_in = stat_frames(feats, cfg.silence_db)
    gv_in, ms_in = set_gv_ms([body_in], ms_fft)  # the input's own statistics
    m = utterance_metrics(resyn, silence_db=cfg.silence_db, ms_fft=ms_fft, target_gv=gv_in,
                          target_ms=ms_in, ref=feats, mcd_dims=mcd_dims)
    return {
        **written,
        "n_nonsilent": int(body_in.shape[0]),
        "gv_distance": m.get("gv_distance", math.nan),  # NaN: < 2 non-silent frames
        "ms_distance": m.get("ms_distance", math.nan),
        "mcd": m["mcd"],
        "f0_rmse": m["f0_rmse"],
        "logf0_corr": m["logf0_corr"],
        "vuv_error": m["vuv_error"],
        "n_aligned": m["n_frames"],
    }


def analysis_synthesis_batch(files: Sequence[PathLike], out: PathLike,
                             cfg: Optional[FeatureConfig] = None, sr: Optional[int] = None,
                             ms_fft: int = 256, jobs: int = 1, overwrite: bool = False,
                             metrics: bool = True, progress: Optional[bool] = None
                             ) -> Dict[str, Any]:
    """:func:`analysis_synthesis` of many files into ``<out>/<input name>.wav``, in
    parallel threads (WORLD releases the GIL), in one process.

    Outputs that exist are skipped unless ``overwrite`` (a killed batch resumes); a
    file that fails is listed and the batch goes on. ``<out>/anasyn.json`` (atomic)
    records the batch.

    Returns
    -------
    dict
        ``done`` (the per-file results), ``skipped`` (outputs that existed), ``failed``
        (``{input, error}``), ``seconds``.
    """
    import json
    import time

    from joblib import Parallel, delayed
    from tqdm import tqdm

    from .corpus import plan_batch
    from .errors import file_error
    from .io import atomic_write_text
    from .parallel import worker_count

    out = Path(out)
    todo, skipped = plan_batch(files, out, overwrite)

    def one(f: Path, o: Path) -> Dict[str, Any]:
        try:
            return {"ok": True, **analysis_synthesis(f, o, cfg, sr, ms_fft, metrics=metrics)}
        except Exception as e:  # one bad file must not stop the batch
            return {"ok": False, "input": str(f), "error": str(file_error(f, e))}

    t0 = time.perf_counter()
    res = []
    if todo:
        n = worker_count(jobs, len(todo))
        gen = Parallel(n_jobs=n, backend="threading", return_as="generator_unordered")(
            delayed(one)(Path(f), Path(o)) for f, o in todo)
        disable = None if progress is None else not progress
        res = list(tqdm(gen, total=len(todo), desc="analysis-synthesis", unit="file",
                        disable=disable))
    summary = {"done": sorted((r for r in res if r["ok"]), key=lambda r: r["input"]),
               "skipped": skipped,
               "failed": sorted(({"input": r["input"], "error": r["error"]}
                                 for r in res if not r["ok"]), key=lambda r: r["input"]),
               "seconds": round(time.perf_counter() - t0, 3)}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "anasyn.json", json.dumps(summary, indent=1))
    return summary


def format_report(res: Dict[str, object]) -> str:
    """Human-readable lines of :func:`analysis_synthesis`'s result."""
    def num(v, fmt):
        return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)

    return "\n".join([
        f"wrote {res['output']} ({res['duration_s']:.2f} s at {res['fs_out']} Hz)",
        f"resynthesis vs input ({res['n_nonsilent']} non-silent frames of {res['n_frames']}):",
        f"  MCD          {num(res['mcd'], '.3f')} dB (c1..c24, DTW, {res['n_aligned']} pairs)",
        f"  F0 RMSE      {num(res['f0_rmse'], '.2f')} Hz",
        f"  log-F0 corr  {num(res['logf0_corr'], '.4f')}",
        f"  V/UV error   {num(100 * res['vuv_error'], '.2f')} %",
        f"  GV distance  {num(res['gv_distance'], '.4f')} (mean |log10 GV ratio|)",
        f"  MS distance  {num(res['ms_distance'], '.2f')} dB",
    ])
