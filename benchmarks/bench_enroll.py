"""Enrollment time and peak memory per number of recordings (``vawgan enroll``).

For each N, a fresh process enrolls a new speaker (VCC2016 TM3's first N training
sentences, from audio, as a user would) into the packaged model and reports wall
time and peak RSS; the baseline, in the same run, is the WORLD analysis alone of the
same N files (the part of enrollment no model change can remove).

Usage::

    python benchmarks/bench_enroll.py [--ns 10,20,50] [--speaker-dir DIR] [--steps 1500]

(adversarial steps: 2/3 of --steps, the default ratio 1000 / 1500)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = ROOT.parent / "shared" / "data" / "vcc2016" / "vcc2016_training" / "TM3"

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
mode, out, steps, files = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
t = time.perf_counter()
if mode == "analysis":
    from vawgan.config import FeatureConfig
    from vawgan.features import analyze_file
    for f in files:
        analyze_file(f, FeatureConfig())
else:
    from vawgan.bundle import load_bundle
    from vawgan.convert import DEFAULT_MODEL
    from vawgan.enroll import enroll
    enroll(load_bundle(DEFAULT_MODEL), "NEW", files, out / "new.pt", out / "work",
           steps=steps, adv_steps=max(1, steps * 2 // 3), progress=False)
print(json.dumps({"seconds": time.perf_counter() - t,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def child(mode, out, steps, files):
    r = subprocess.run([sys.executable, "-c", CHILD, mode, str(out), str(steps), *map(str, files)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{mode} failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ns", default="10,20,50")
    ap.add_argument("--speaker-dir", type=Path, default=DEFAULT_DIR)
    ap.add_argument("--steps", type=int, default=None, help="default: vawgan.enroll's")
    args = ap.parse_args(argv)
    from vawgan.corpus import collect_audio
    from vawgan.enroll import DEFAULT_STEPS

    if not args.speaker_dir.is_dir():
        print(f"bench_enroll: {args.speaker_dir} not found: nothing to measure")
        return 0
    steps = args.steps or DEFAULT_STEPS
    files = collect_audio(args.speaker_dir)
    print(f"bench_enroll: {args.speaker_dir}, {steps} steps, one process per run")
    print(f"{'N':>4} {'analysis s':>11} {'enroll s':>9} {'enroll/analysis':>16} "
          f"{'analysis RSS MB':>16} {'enroll RSS MB':>14}")
    for n in map(int, args.ns.split(",")):
        fs = files[:n]
        with tempfile.TemporaryDirectory() as tmp:
            a = child("analysis", Path(tmp), steps, fs)
            e = child("enroll", Path(tmp), steps, fs)
        print(f"{len(fs):>4} {a['seconds']:>11.1f} {e['seconds']:>9.1f} "
              f"{e['seconds'] / a['seconds']:>16.2f} {a['rss_mb']:>16.0f} {e['rss_mb']:>14.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
