#!/usr/bin/env python3
"""Speed of ``vawgan extract`` on a VCC2016 subset with 1 and 2 joblib workers.

Extracts N speakers x M utterances (default 2 x 10) of the VCC2016 training set into
temporary dumps, once with ``jobs=1`` and once with ``jobs=2``, and prints

* the real-time factor RTF = processing time / audio duration (lower is faster),
* the speed-up t1 / t2 and the parallel efficiency t1 / (2 * t2) (goal >= 0.9);
* ``--profile``: where one worker's time goes, per step of the real extraction code
  (file reading and resampling, Harvest, CheapTrick, D4C, sp2mc, aperiodicity coding,
  writing the .npz), timed by wrapping the functions ``vawgan.extract`` calls.

Both runs are measured here, in the same process; the figures depend on what else
the machine is doing. Skips with a message when the corpus is not there.

Usage: python benchmarks/bench_extract.py [--corpus DIR] [--speakers SF1 TM1] [--utts 10]
       [--profile]
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
    ap.add_argument("--profile", action="store_true",
                    help="also: time per extraction step, one worker")
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
    if args.profile:
        profile(args.corpus, cfg, chosen, audio_s)
    return 0


def profile(corpus: Path, cfg, chosen, audio_s: float) -> None:
    """Time per step of ``extract_corpus(jobs=1)``: the functions the extraction path
    calls are wrapped with timers (the same code runs; nothing is re-implemented)."""
    import pyworld

    import vawgan.audio as audio
    import vawgan.features as features
    from vawgan.extract import extract_corpus

    spent = {}

    def timed(mod, name, label):
        f = getattr(mod, name)

        def g(*a, **k):
            t0 = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                spent[label] = spent.get(label, 0.0) + time.perf_counter() - t0
        setattr(mod, name, g)
        return mod, name, f

    saved = [timed(audio, "read_audio", "read file"), timed(audio, "resample", "resample"),
             timed(pyworld, "harvest", "Harvest (f0)"), timed(pyworld, "dio", "DIO (f0)"),
             timed(pyworld, "stonemask", "StoneMask (f0)"),
             timed(pyworld, "cheaptrick", "CheapTrick (envelope)"),
             timed(pyworld, "d4c", "D4C (aperiodicity)"),
             timed(features, "sp2mc", "sp2mc (mel-cepstrum)"),
             timed(pyworld, "code_aperiodicity", "code aperiodicity"),
             timed(features, "save_features", "write .npz")]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            extract_corpus(corpus, tmp, cfg, utts=chosen, jobs=1, progress=False)
            total = time.perf_counter() - t0
    finally:
        for mod, name, f in saved:
            setattr(mod, name, f)
    print(f"  profile, jobs=1: {total:.2f} s for {audio_s:.1f} s of audio")
    rest = total - sum(spent.values())
    for label, t in sorted(spent.items(), key=lambda kv: -kv[1]) + [("everything else", rest)]:
        print(f"    {label:24s} {t:7.2f} s  {100 * t / total:5.1f} %  RTF {t / audio_s:.4f}")


if __name__ == "__main__":
    sys.exit(main())
