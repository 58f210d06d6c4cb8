#!/usr/bin/env python3
"""Speed of ``vawgan-convert`` and ``vawgan convert``, against a WORLD-only floor.

1. **Single file, whole process from the shell.** ``vawgan-convert in.wav out.wav`` on a
   ~3.5 s 16 kHz utterance, several repeats, median wall time; against a *floor* script,
   run the same way in the same run, that only imports pyworld + soundfile and does
   Harvest + CheapTrick + D4C + synthesis + write on the same file. Goal: <= 1.05x the
   floor (imports, loading the bundle and its ONNX session, the network and the metrics
   must add little to the WORLD analysis). With ``--baseline-repo OLD_CHECKOUT`` the same
   commands of another checkout (e.g. ``git worktree add /tmp/old <commit>``) are timed in
   the same run, with that checkout's own packaged model (or ``--baseline-model``), since
   an older checkout may not read today's bundle format.
2. **Batch.** ``vawgan convert`` of N files with ``--jobs 1`` and ``--jobs 2`` (threads
   and processes): files/s and real-time factor (wall time / audio duration), with
   the ratio to ``--jobs 1``; the baseline checkout's too.

Needs a model bundle: ``--model BUNDLE`` or the packaged default; without one it says
so and exits 0. Audio: VCC2016 (``../shared/data/vcc2016`` beside the repository) when
present, else the ARCTIC wav shipped with pysptk.

    python benchmarks/bench_convert.py --model exp/default/vawgan.pt --repeats 5 --n-files 54
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
VCC = REPO.parent / "shared" / "data" / "vcc2016" / "vcc2016_training"

FLOOR = r"""
import sys
import numpy as np
import pyworld
import soundfile as sf
x, fs = sf.read(sys.argv[1])
x = np.ascontiguousarray(x, dtype=np.float64)
f0, t = pyworld.harvest(x, fs, f0_floor=50.0, f0_ceil=500.0, frame_period=5.0)
sp = pyworld.cheaptrick(x, f0, t, fs, fft_size=1024)
ap = pyworld.d4c(x, f0, t, fs, fft_size=1024)
y = pyworld.synthesize(f0, sp, ap, fs, 5.0)
sf.write(sys.argv[2], y, fs)
"""

# what the installed console script runs (vawgan.cli:convert_script, see pyproject.toml)
CONVERT = "import vawgan.cli as c; c.convert_script()"
BATCH = "import sys; from vawgan.cli import main; sys.exit(main())"


def _env(repo=REPO):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(repo) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONWARNINGS"] = "ignore"
    return env


def _time(cmd, env, repeats: int):
    """Median wall time of ``cmd``, run outside any checkout (``python -c`` puts the
    working folder first on sys.path, which would shadow PYTHONPATH's package)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, env=env, capture_output=True, text=True,
                           cwd=tempfile.gettempdir())
        times.append(time.perf_counter() - t0)
        if r.returncode != 0:
            raise SystemExit(f"command failed ({r.returncode}): {' '.join(map(str, cmd))}\n"
                             f"{r.stderr.strip()[-600:]}")
    return statistics.median(times), times


def _inputs(n: int):
    """n audio files (VCC2016 SF1 when present, else copies of the pysptk ARCTIC wav)."""
    if VCC.is_dir():
        files = sorted((VCC / "SF1").glob("*.flac"))[:n]
        if len(files) == n:
            return files, "VCC2016 SF1"
    import pysptk

    return [Path(pysptk.util.example_audio_file())] * n, "pysptk ARCTIC arctic_a0007.wav"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="bundle (default: the packaged one)")
    ap.add_argument("--repeats", type=int, default=5, help="runs per single-file command")
    ap.add_argument("--n-files", type=int, default=8, help="files in the batch benchmark")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--baseline-repo", type=Path, default=None,
                    help="another checkout whose vawgan-convert and vawgan convert are timed too")
    ap.add_argument("--baseline-model", type=Path, default=None,
                    help="bundle for the baseline checkout (default: its packaged model)")
    ap.add_argument("--no-batch", action="store_true", help="single-file figures only")
    args = ap.parse_args(argv)

    sys.path.insert(0, str(REPO))
    from vawgan.convert import DEFAULT_MODEL

    model = args.model or DEFAULT_MODEL
    if not Path(model).is_file():
        print(f"bench_convert: skipped: no model bundle at {model} (pass --model BUNDLE.pt)")
        return 0
    import soundfile as sf

    env = _env()
    files, source = _inputs(max(args.n_files, 1))
    one = files[0]
    dur = sf.info(str(one)).duration
    print(f"audio: {source}; single file {one.name} ({dur:.2f} s); model {model}; "
          f"{os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        floor_py = tmp / "floor.py"
        floor_py.write_text(FLOOR)
        t_import, _ = _time([sys.executable, "-c", "import torch"], env, args.repeats)
        t_floor, fl = _time([sys.executable, str(floor_py), str(one), str(tmp / "floor.wav")],
                            env, args.repeats)
        t_conv, cv = _time([sys.executable, "-c", CONVERT, str(one), str(tmp / "conv.wav"),
                            "--model", str(model)], env, args.repeats)
        t_old = None
        systems = [("this checkout", env, model)]
        if args.baseline_repo is not None:
            old_repo = args.baseline_repo.resolve()
            old_model = args.baseline_model or (old_repo / Path(model).relative_to(REPO)
                                                if Path(model).resolve().is_relative_to(REPO)
                                                else model)
            systems.append((f"baseline {old_repo}", _env(old_repo), old_model))
            t_old, ol = _time([sys.executable, "-c", CONVERT, str(one), str(tmp / "old.wav"),
                               "--model", str(old_model)], _env(old_repo), args.repeats)
        print("\nsingle file, whole process (median of %d runs):" % args.repeats)
        print(f"  floor (pyworld analysis + synthesis)  {t_floor:6.2f} s   runs {_fmt(fl)}")
        print(f"  vawgan-convert in.wav out.wav          {t_conv:6.2f} s   runs {_fmt(cv)}")
        print(f"  ratio vawgan-convert / floor           {t_conv / t_floor:6.2f}x  (goal <= 1.05x)")
        if t_old is not None:
            print(f"  baseline {args.baseline_repo} (model {systems[1][2]}):")
            print(f"    vawgan-convert                       {t_old:6.2f} s   runs {_fmt(ol)}")
            print(f"    ratio to the floor                   {t_old / t_floor:6.2f}x")
        print(f"  (for scale: python -c 'import torch'   {t_import:6.2f} s)")
        if args.no_batch:
            return 0

        ind = tmp / "in"
        ind.mkdir()
        for i, f in enumerate(files):
            shutil.copy(f, ind / f"{i:03d}{f.suffix}")
        total = sum(sf.info(str(p)).duration for p in ind.iterdir())
        print(f"\nbatch: vawgan convert of {len(files)} files ({total:.1f} s of audio):")
        for name, sys_env, sys_model in systems:
            print(f"  {name}:")
            base = None
            for jobs, backend in ((1, "threads"), (args.jobs, "threads"),
                                  (args.jobs, "processes")):
                out = tmp / f"out_{len(name)}_{jobs}_{backend}"
                t, _ = _time([sys.executable, "-c", BATCH, "convert", "--model", str(sys_model),
                              "--in", str(ind), "--out", str(out), "--jobs", str(jobs),
                              "--backend", backend, "--overwrite"], sys_env, 1)
                base = base or t
                print(f"    --jobs {jobs} --backend {backend:9s} {t:6.2f} s  "
                      f"{len(files) / t:5.2f} files/s  RTF {t / total:.3f}  "
                      f"speed-up vs --jobs 1: {base / t:.2f}x")
    return 0


def _fmt(ts):
    return " ".join(f"{t:.2f}" for t in ts)


if __name__ == "__main__":
    sys.exit(main())
