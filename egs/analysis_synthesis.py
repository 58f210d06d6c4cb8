"""Analysis-synthesis through vawgan's features: the vocoder floor of one file.

The file goes through the feature pipeline every other part of vawgan uses
(:func:`vawgan.features.analyze_file`: WORLD f0 / CheapTrick / D4C -> mel-cepstrum
c0..c39 + coded aperiodicity), is resynthesized with :func:`vawgan.features.synthesize`
and written; the written file is analyzed again and compared with the input:

* GV distance and MS distance of c1..c39 over the non-silent frames to the input's own
  GV and MS (:func:`vawgan.stats.set_gv_ms`);
* MCD on c1..c24 after DTW, F0 RMSE and V/UV error (a fraction) against the input;

all from :func:`vawgan.uttmetrics.utterance_metrics`, the function behind every
per-utterance figure of vawgan.

No conversion through these features can do better than these numbers.
(``vawgan analysis-synthesis`` is the same thing as a command.)

Run, from the repository root::

    python egs/analysis_synthesis.py                    # pysptk's ARCTIC wav -> out.wav
    python egs/analysis_synthesis.py in.flac --out /tmp/resynth.wav
    python egs/analysis_synthesis.py --json             # one JSON object on stdout
"""

from __future__ import annotations

import argparse
import json
import warnings


def default_input() -> str:
    """The ARCTIC utterance shipped inside the pysptk wheel (16 kHz, 4 s)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pysptk <= 1.0.1 imports pkg_resources
        import pysptk

    return pysptk.util.example_audio_file()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", nargs="?", default=None,
                        help="audio file (default: pysptk's shipped ARCTIC wav)")
    parser.add_argument("--out", default="out.wav", help="resynthesized file (default out.wav)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    from vawgan.audio import resample, write_audio
    from vawgan.config import FeatureConfig
    from vawgan.features import analyze_file, synthesize
    from vawgan.stats import set_gv_ms, stat_frames
    from vawgan.uttmetrics import utterance_metrics

    in_path = args.input or default_input()
    cfg = FeatureConfig()  # 16 kHz working rate, 5 ms frames, Harvest, 40 mel-cepstra

    # 1. analysis (the input is resampled to cfg.fs; fs_orig is its own rate)
    feats, fs_orig = analyze_file(in_path, cfg)
    # 2. synthesis from the features alone, back at the input's rate
    y = resample(synthesize(feats), feats.fs, fs_orig)
    write_audio(args.out, y, fs_orig)
    # 3. re-analysis of what was written, and the comparison
    resyn, _ = analyze_file(args.out, cfg)
    gv_in, ms_in = set_gv_ms([stat_frames(feats, cfg.silence_db)])  # (39,), (129, 39) dB
    m = utterance_metrics(resyn, silence_db=cfg.silence_db, ms_fft=256, target_gv=gv_in,
                          target_ms=ms_in, ref=feats)  # one DTW: MCD + F0
    result = {
        "input": str(in_path),
        "output": str(args.out),
        "n_frames": feats.n_frames,
        "gv_distance": m["gv_distance"],
        "ms_distance_db": m["ms_distance"],
        "mcd_db": m["mcd"],
        "f0_rmse_hz": m["f0_rmse"],
        "vuv_error": m["vuv_error"],
    }
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"{result['input']} -> {result['output']} ({feats.n_frames} frames)")
        print(f"GV distance {result['gv_distance']:.4f} (log10 units), "
              f"MS distance {result['ms_distance_db']:.2f} dB, MCD {result['mcd_db']:.2f} dB, "
              f"F0 RMSE {result['f0_rmse_hz']:.1f} Hz, V/UV error {100 * result['vuv_error']:.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
