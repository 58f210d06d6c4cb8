#!/usr/bin/env python3
"""Long inputs: peak memory and real-time factor of ``vawgan-convert`` per input length.

For each length (minutes) a 16 kHz WAV is made by joining speech utterances with short
pauses (VCC2016 sentences from ``../shared/data/vcc2016`` beside the repository when
present, else the ARCTIC wav shipped with pysptk), then, each in its own process:

* ``vawgan-convert in.wav out.wav --metrics-on none`` (the packaged model or ``--model``);
* the baseline, in the same run: ``vawgan analysis-synthesis in.wav out.wav`` (the
  WORLD analysis and synthesis alone, through the same chunked code path).

Printed per length: wall time, real-time factor (wall / audio duration) and peak RSS of
each (``os.wait4``'s ``ru_maxrss`` of the child). Goal (issue 11): peak RSS <= 1.5 GB and
time linear in length (RTF about constant) for 1, 10 and 60 minutes. Before chunked
analysis a 10-minute input took 5 minutes and 23.7 GB.

    python benchmarks/bench_long.py                   # 1 and 10 minutes
    python benchmarks/bench_long.py --minutes 1 10 60
    python benchmarks/bench_long.py --minutes 60 --systems vawgan-convert
    python benchmarks/bench_long.py --minutes 0.2     # smoke run
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
VCC = REPO.parent / "shared" / "data" / "vcc2016" / "vcc2016_training"
FS = 16000


def _speech() -> list:
    import soundfile as sf

    files = sorted(VCC.glob("SF1/*.flac"))[:30] if VCC.is_dir() else []
    if not files:
        import pysptk

        files = [Path(pysptk.util.example_audio_file())]
    out = []
    for f in files:
        x, fs = sf.read(f)
        if fs != FS:
            import librosa

            x = librosa.resample(x, orig_sr=fs, target_sr=FS)
        out.append(x.astype(np.float32))
    return out


def make_long_wav(path: Path, minutes: float) -> float:
    """Write ``minutes`` of speech (utterances + 0.3 s pauses), block by block; seconds."""
    import soundfile as sf

    utts = _speech()
    pause = np.zeros(int(0.3 * FS), dtype=np.float32)
    need, n, i = int(minutes * 60 * FS), 0, 0
    with sf.SoundFile(path, "w", FS, 1, subtype="PCM_16") as f:
        while n < need:
            x = np.concatenate([utts[i % len(utts)], pause])[: need - n]
            f.write(x)
            n += len(x)
            i += 1
    return n / FS


def run_measured(cmd: list) -> tuple:
    """(wall seconds, peak RSS in MB, return code) of one child process."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    err = p.stderr.read().decode(errors="replace") if p.stderr else ""
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0:
        print(f"  command failed (rc {rc}): {' '.join(map(str, cmd))}\n{err[-800:]}",
              file=sys.stderr)
    return wall, ru.ru_maxrss / 1024.0, rc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[1.0, 10.0])
    ap.add_argument("--model", default=None, help="bundle (default: the packaged model)")
    ap.add_argument("--workdir", default=None, help="where the long files go (default: a temp dir)")
    ap.add_argument("--systems", nargs="+", default=["vawgan-convert", "analysis-synthesis"],
                    choices=["vawgan-convert", "analysis-synthesis"],
                    help="what to run (default both; the baseline is analysis-synthesis)")
    args = ap.parse_args()
    bindir = Path(sys.executable).parent
    convert = [str(bindir / "vawgan-convert")]
    vawgan = [str(bindir / "vawgan")]
    model = ["--model", args.model] if args.model else []
    print(f"{'minutes':>7} {'system':<20} {'wall s':>8} {'RTF':>6} {'peak RSS MB':>12}")
    rc_all = 0
    with tempfile.TemporaryDirectory(dir=args.workdir) as d:
        d = Path(d)
        for m in args.minutes:
            src = d / f"long_{m:g}min.wav"
            dur = make_long_wav(src, m)
            for name, cmd in (
                    ("vawgan-convert", convert + [str(src), str(d / "conv.wav"),
                                                  "--metrics-on", "none"] + model),
                    ("analysis-synthesis", vawgan + ["analysis-synthesis", str(src),
                                                     str(d / "anasyn.wav")])):
                if name not in args.systems:
                    continue
                wall, rss, rc = run_measured(cmd)
                rc_all = rc_all or rc
                print(f"{m:>7g} {name:<20} {wall:>8.1f} {wall / dur:>6.3f} {rss:>12.0f}",
                      flush=True)
            src.unlink()
    return rc_all


if __name__ == "__main__":
    sys.exit(main())
