"""Add a new target voice to the bundled model, then convert a VCC2016 sentence to it.

The speaker is CMU ARCTIC's slt (``../shared/data/cmu_arctic/slt``, or ``--voice DIR``
for any folder of one person's recordings): ``vawgan.enroll.enroll`` analyses N of
their recordings with the model's own feature settings, computes their statistics and
learns their speaker embedding with the rest of the network frozen, and writes a bundle
with the model's speakers plus the new one. A source sentence (VCC2016 SF1 100151 from
``../shared/data/vcc2016``, else the ARCTIC wav shipped with pysptk) is then converted
to the new voice with ``vawgan.convert.convert_file``, and the speaker encoder's
verdict printed when the ``eval`` extra is installed.

Run::

    python egs/enroll_new_voice.py                       # slt, 20 sentences -> slt.pt, converted_slt.wav
    python egs/enroll_new_voice.py --voice my_recordings/ --name ME --n 30
    python egs/enroll_new_voice.py --smoke               # 12 sentences, 200 + 50 adversarial steps (seconds)
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voice", type=Path, default=SHARED / "cmu_arctic" / "slt",
                        help="folder of the new speaker's recordings (default: ARCTIC slt)")
    parser.add_argument("--name", default="SLT", help="the new speaker's name")
    parser.add_argument("--n", type=int, default=20, help="recordings to enroll from")
    parser.add_argument("--source", type=Path, default=None, help="sentence to convert")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="enrollment work folder (default enroll_work/<name>_<n>[_smoke]: "
                             "one per setting, so a --smoke run and a full run do not "
                             "meet in one checkpoint)")
    parser.add_argument("--out", type=Path, default=Path("converted_slt.wav"))
    parser.add_argument("--steps", type=int, default=None, help="embedding training steps")
    parser.add_argument("--smoke", action="store_true", help="12 recordings, 200 + 50 adversarial steps")
    args = parser.parse_args(argv)

    from vawgan.bundle import load_bundle
    from vawgan.convert import DEFAULT_MODEL, convert_file
    from vawgan.corpus import collect_audio
    from vawgan.enroll import DEFAULT_ADV_STEPS, DEFAULT_STEPS, enroll
    from vawgan.train import set_threads

    set_threads(0)  # torch threads as vawgan train uses them (half the cores)

    if not args.voice.is_dir():
        print(f"{args.voice}: no recordings of a new voice here; pass --voice DIR. "
              "Nothing to do.")
        return 0
    n = 12 if args.smoke else args.n
    files = collect_audio(args.voice)[:n]
    base = load_bundle(DEFAULT_MODEL)
    if args.workdir is None:
        args.workdir = Path("enroll_work") / f"{args.name}_{n}{'_smoke' if args.smoke else ''}"
    args.workdir.mkdir(parents=True, exist_ok=True)
    info = enroll(base, args.name, files, args.workdir / f"{args.name}.pt", args.workdir,
                  steps=args.steps or (200 if args.smoke else DEFAULT_STEPS),
                  adv_steps=50 if args.smoke else DEFAULT_ADV_STEPS)
    print(f"enrolled {info['name']} from {info['n_files']} recordings "
          f"({info['speech_seconds']:.0f} s of speech) in {info['seconds']:.0f} s; "
          f"NLL {info['nll_start']:.2f} -> {info['nll_end']:.2f}; speakers now: "
          f"{', '.join(info['speakers'])}")

    source = args.source
    if source is None:
        vcc = SHARED / "vcc2016" / "vcc2016_training" / "SF1"
        found = sorted(vcc.glob("100151.*")) if vcc.is_dir() else []
        if found:
            source = found[0]
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import pysptk
            source = Path(pysptk.util.example_audio_file())
    bundle = load_bundle(info["out"])
    res = convert_file(bundle, source, args.out, target=args.name, postfilter="gv")
    print(f"{source} -> {res['output']} ({res['duration_s']:.2f} s, target {args.name})")
    try:
        from vawgan.speaker import embed_file, load_encoder, speaker_centroids, similarity

        load_encoder()
    except Exception:
        return 0  # the eval extra is not installed: no speaker-similarity verdict
    cents = speaker_centroids({args.name: files, "source": [source]})
    sim = similarity(embed_file(args.out), cents, args.name)
    print(f"speaker similarity of the output to {args.name}: {sim['spk_sim']:.3f} "
          f"(nearer to {args.name} than to the source: {bool(sim['spk_id'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
