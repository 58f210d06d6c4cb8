#!/usr/bin/env python3
"""Speed of vawgan's batched mel-cepstrum conversion against pysptk's per-frame SPTK.

Converts 1000 real CheapTrick envelopes (the ARCTIC utterance shipped in pysptk's
wheel, frames repeated to reach 1000) sp -> mcep and mcep -> sp with
``vawgan.mcep`` (one matrix product per utterance) and with ``pysptk.sp2mc`` /
``pysptk.mc2sp`` (frame by frame), checks the results agree (max relative difference)
and prints frames/s and the speed ratio, both measured in this run. The matrices
are built once per (fft_size, order, alpha) and cached; that one-off cost is printed
separately. Goal: ratio >= 30.

Usage: python benchmarks/bench_mcep.py [--frames 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np


def best_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5, help="best of N timings")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
    try:
        import pysptk
        import pyworld
        import soundfile as sf
    except ImportError as e:
        print(f"bench_mcep: skipped ({e.name} is not installed)")
        return 0
    from vawgan import mcep

    x, fs = sf.read(pysptk.util.example_audio_file(), dtype="float64")
    f0, t = pyworld.harvest(x, fs, frame_period=5.0)
    sp = np.maximum(pyworld.cheaptrick(x, f0, t, fs, fft_size=1024), 1e-16)
    sp = np.ascontiguousarray(np.resize(sp, (args.frames, sp.shape[1])))
    order, alpha, fft = 39, 0.41, 1024

    t0 = time.perf_counter()
    mcep.sp2mc_matrix.cache_clear()
    mcep.mc2sp_matrix.cache_clear()
    mcep.sp2mc_matrix(fft, order, alpha)
    mcep.mc2sp_matrix(fft, order, alpha)
    t_build = time.perf_counter() - t0

    mc_ref = np.stack([pysptk.sp2mc(s, order, alpha) for s in sp])
    mc_fast = mcep.sp2mc(sp, order, alpha)
    sp_ref = np.stack([pysptk.mc2sp(m, alpha, fft) for m in mc_ref])
    sp_fast = mcep.mc2sp(mc_ref, alpha, fft)
    err1 = float(np.max(np.abs(mc_fast - mc_ref) / np.abs(mc_ref)))
    err2 = float(np.max(np.abs(sp_fast - sp_ref) / np.abs(sp_ref)))

    rows = []
    for name, slow, fast, err in [
        ("sp -> mcep", lambda: [pysptk.sp2mc(s, order, alpha) for s in sp],
         lambda: mcep.sp2mc(sp, order, alpha), err1),
        ("mcep -> sp", lambda: [pysptk.mc2sp(m, alpha, fft) for m in mc_ref],
         lambda: mcep.mc2sp(mc_ref, alpha, fft), err2),
    ]:
        ts, tf = best_time(slow, args.repeat), best_time(fast, args.repeat)
        rows.append((name, args.frames / ts, args.frames / tf, ts / tf, err))

    print(f"bench_mcep: {args.frames} real frames (fft {fft}, order {order}, alpha {alpha}), "
          f"best of {args.repeat}")
    print(f"{'direction':<12} {'pysptk fr/s':>12} {'vawgan fr/s':>12} {'ratio':>8} {'max rel diff':>13}")
    for name, a, b, r, e in rows:
        print(f"{name:<12} {a:>12.0f} {b:>12.0f} {r:>7.1f}x {e:>13.2e}")
    print(f"one-off matrix build (both directions, cached afterwards): {t_build * 1000:.0f} ms")
    ok = all(r >= 30 for *_, r, _ in rows)
    print(f"goal ratio >= 30x: {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
