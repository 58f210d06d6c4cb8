#!/usr/bin/env python3
"""Speed of ``vawgan extract`` on a VCC2016 subset with 1 and 2 joblib workers.

Extracts N speakers x M utterances (default 2 x 10) of the VCC2016 training set into
temporary dumps, once with ``jobs=1`` and once with ``jobs=2``, and prints

* the real-time factor RTF = processing time / audio duration (lower is faster),
* the speed-up t1 / t2 and the parallel efficiency t1 / (2 * t2) (goal >= 0.9).

Both runs are measured here, in the same process; the figures depend on what else
the machine is doing. Skips with a message when the corpus is not there.

Usage: python benchmarks/bench_extract.py [--corpus DIR] [--speakers SF1 TM1] [--utts 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "vcc2016" / "vcc2016_training"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--speakers", nargs="+", default=["SF1", "TM1"])
    ap.add_argument("--utts", type=int, default=10, help="utterances per speaker")
    ap.add_argument("--f0-method", default="harvest", choices=["harvest", "dio"])
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
    if not all((args.corpus / s).is_dir() for s in args.speakers):
        print(f"bench_extract: skipped ({args.corpus} with speakers {' '.join(args.speakers)} "
              "not found)")
        return 0
    import soundfile as sf

    from vawgan.config import FeatureConfig
    from vawgan.corpus import list_corpus
    from vawgan.extract import extract_corpus

    items, _ = list_corpus(args.corpus, args.speakers)
    chosen = []
    for spk in args.speakers:
        chosen += [(s, u) for s, u, _ in items if s == spk][: args.utts]
    audio_s = sum(sf.info(str(p)).duration for s, u, p in items if (s, u) in set(chosen))
    cfg = FeatureConfig(f0_method=args.f0_method)
    # warm-up outside the timings: imports, mcep matrices, and joblib's worker pool
    # (loky keeps it for the next call; its start-up, about 1 s, is a one-off per command)
    for jobs in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            extract_corpus(args.corpus, tmp, cfg, utts=chosen[:2], jobs=jobs, progress=False)
    times = {}
    for jobs in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            res = extract_corpus(args.corpus, tmp, cfg, utts=chosen, jobs=jobs, progress=False)
            times[jobs] = time.perf_counter() - t0
            assert len(res.extracted) == len(chosen), res.failures
    t1, t2 = times[1], times[2]
    print(f"bench_extract: {len(chosen)} utterances ({' '.join(args.speakers)}), "
          f"{audio_s:.1f} s of audio, f0 {args.f0_method}")
    for jobs, t in times.items():
        print(f"  jobs={jobs}: {t:6.2f} s  RTF {t / audio_s:.3f}  "
              f"({len(chosen) / t:.2f} utt/s)")
    eff = t1 / (2 * t2)
    print(f"  speed-up t1/t2 = {t1 / t2:.2f}x, parallel efficiency t1/(2 t2) = {eff:.2f} "
          f"(goal >= 0.9: {'met' if eff >= 0.9 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
