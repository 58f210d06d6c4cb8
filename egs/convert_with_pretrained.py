"""Convert a recording to a target voice with the bundled model, from Python.

The same pipeline as ``vawgan-convert`` (see :mod:`vawgan.convert`): analysis of the
input, c1..c39 through the VAW-GAN (source statistics estimated from the input unless a
training speaker is named), optional GV / MS postfilter, log-Gaussian f0 transform,
WORLD synthesis; then the over-smoothing figures (GV and MS distance to the target's
natural statistics stored in the bundle).

The default model is ``vawgan/pretrained/vcc2016_vawgan.pt`` (how it is made:
``vawgan/pretrained/README.md``). It is not in the repository; when it is not
installed this example says so and exits with status 0. Any bundle written by
``vawgan train`` (or by ``egs/train_tiny.py --keep``) works with ``--model``.

Run::

    python egs/convert_with_pretrained.py                          # pysptk's ARCTIC wav -> converted.wav
    python egs/convert_with_pretrained.py in.wav --out out.wav --target TM1 --postfilter gv
    python egs/convert_with_pretrained.py in.wav --model exp/vawgan.pt
"""

from __future__ import annotations

import argparse
import json
import sys
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
    parser.add_argument("--out", default="converted.wav", help="output .wav/.flac")
    parser.add_argument("--model", default=None,
                        help="model bundle (default: the packaged vcc2016_vawgan.pt)")
    parser.add_argument("--target", default=None, help="target speaker (default: the bundle's)")
    parser.add_argument("--postfilter", choices=("none", "gv", "ms"), default="none")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)

    from vawgan.bundle import load_bundle
    from vawgan.convert import DEFAULT_MODEL, convert_file, default_target

    if args.model is None and not DEFAULT_MODEL.is_file():
        print(f"No default model is installed ({DEFAULT_MODEL} does not exist): nothing to "
              "convert. See vawgan/pretrained/README.md for how it is produced, or pass "
              "--model BUNDLE.pt (e.g. exp/default/vawgan.pt from the recipe).")
        return 0
    bundle = load_bundle(args.model or DEFAULT_MODEL)
    print(f"model: {bundle.path} ({bundle.kind}), speakers {', '.join(bundle.speakers)}, "
          f"default target {default_target(bundle)}", file=sys.stderr)

    info = convert_file(bundle, args.input or default_input(), args.out,
                        target=args.target, postfilter=args.postfilter)
    if args.json:
        print(json.dumps(info, indent=1))
    else:
        print(f"{info['input']} -> {info['output']} (target {info['target']}, "
              f"postfilter {info['postfilter']}, {info['duration_s']:.2f} s)")
        for k, v in info["metrics"].items():
            print(f"  {k}: {v:.4g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
