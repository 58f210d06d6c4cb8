"""``vawgan enroll``: add a target speaker to a model bundle (:mod:`vawgan.enroll`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import InputsError, VawganError
from ..parallel import check_jobs
from ..io import check_writable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..enroll import (ADAPT_MODES, DEFAULT_ADAPT, DEFAULT_ADV_STEPS, DEFAULT_ADV_WEIGHTS,
                          DEFAULT_BIAS_LR, DEFAULT_CRITIC_LR, DEFAULT_LR, DEFAULT_STEPS,
                          MIN_SPEECH_SECONDS)

    parser.add_argument("--name", required=True, help="the new target speaker's name")
    parser.add_argument("--in", dest="inputs", type=Path, required=True,
                        help="their recordings: a folder or a list file (10-100 files, any "
                             "text, any rate)")
    parser.add_argument("--out", type=Path, required=True,
                        help="the new bundle (.pt): the base speakers plus the new one")
    parser.add_argument("--model", type=Path, default=None,
                        help="base bundle (default: the packaged model)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="features and checkpoint of this enrollment, for resuming "
                             "(default: <out without .pt>.enroll/)")
    parser.add_argument("--replace", action="store_true",
                        help="enroll again a speaker the bundle already has")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                        help=f"training steps of the speaker embedding (default {DEFAULT_STEPS})")
    parser.add_argument("--lr", type=float, default=DEFAULT_LR,
                        help=f"learning rate (default {DEFAULT_LR})")
    parser.add_argument("--adv-steps", type=int, default=DEFAULT_ADV_STEPS,
                        help="then adversarial steps: the critic's new row against the "
                             "speaker's frames, the decoder's row on reconstruction + the "
                             f"adversarial term as in training (default {DEFAULT_ADV_STEPS}; "
                             "0 = reconstruction only)")
    parser.add_argument("--adv-weight", type=float, default=None,
                        help="weight of the adversarial term (default " + ", ".join(
                            f"{v:g} with --adapt {k}" for k, v in DEFAULT_ADV_WEIGHTS.items())
                        + "; higher: more variance, higher MCD)")
    parser.add_argument("--adapt", choices=ADAPT_MODES, default=DEFAULT_ADAPT,
                        help="what the new speaker gets of the decoder: 'row' (its embedding "
                             "row only) or 'bias' (the row and a per-speaker bias of the "
                             "first hidden layer; the bundle gets model.spk_bias, the base "
                             f"speakers convert exactly as before) (default {DEFAULT_ADAPT})")
    parser.add_argument("--bias-lr", type=float, default=DEFAULT_BIAS_LR,
                        help=f"learning rate of the bias row (default {DEFAULT_BIAS_LR})")
    parser.add_argument("--critic-lr", type=float, default=DEFAULT_CRITIC_LR,
                        help=f"learning rate of the critic's row (default {DEFAULT_CRITIC_LR})")
    parser.add_argument("--min-speech", type=float, default=MIN_SPEECH_SECONDS,
                        help=f"seconds of speech needed (default {MIN_SPEECH_SECONDS:g})")
    parser.add_argument("--jobs", type=int, default=1, help="parallel analysis threads")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads of the training steps (default 0: as vawgan "
                             "train, max(1, min(4, cores // 2)))")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from ..bundle import load_bundle
    from ..convert import resolve_model
    from ..corpus import collect_audio
    from ..enroll import enroll
    from ..train import set_threads

    check_jobs(args.jobs)
    if args.threads < 0:
        raise VawganError(f"--threads {args.threads}: must be >= 0 (0 = auto)")
    if args.out.suffix != ".pt":
        raise VawganError(f"{args.out}: the output bundle must end in .pt")
    model = resolve_model(args.model)
    check_writable(args.out)
    workdir = args.workdir or args.out.with_suffix(".enroll")
    check_writable(workdir, folder=True)
    files = collect_audio(args.inputs, features=True)
    bundle = load_bundle(model)
    set_threads(args.threads)
    try:
        info = enroll(bundle, args.name, files, args.out, workdir, steps=args.steps,
                      lr=args.lr, adv_steps=args.adv_steps, adv_weight=args.adv_weight,
                      critic_lr=args.critic_lr, adapt=args.adapt, bias_lr=args.bias_lr,
                      replace=args.replace, jobs=args.jobs, min_speech=args.min_speech,
                      progress=False if args.no_progress else None)
    except InputsError as e:  # too little speech: which files did not count, then why
        _list_left_out(e.left_out)
        raise
    _list_left_out(info["failed"])
    f0 = info["f0_range"]
    print(f"vawgan enroll: {info['name']} from {info['n_files']} file(s), "
          f"{info['speech_seconds']:.1f} s of speech; reconstruction NLL "
          f"{info['nll_start']:.2f} -> {info['nll_rec']:.2f} in {info['steps']} steps, "
          f"{info['nll_end']:.2f} after {info['adv_steps']} adversarial steps, "
          f"{info['seconds']:.1f} s")
    if f0:
        print(f"vawgan enroll: proposed f0 search range for {info['name']}: "
              f"{f0[0]:g}-{f0[1]:g} Hz")
    print(f"vawgan enroll: wrote {info['out']} (speakers: {', '.join(info['speakers'])}); "
          f"convert with: vawgan-convert in.wav out.wav --model {info['out']} "
          f"--target {info['name']}")
    return 1 if info["failed"] else 0


def _list_left_out(errors) -> None:
    if errors:
        print(f"left out ({len(errors)}):", file=sys.stderr)
        for e in errors:
            print(f"  {e}", file=sys.stderr)
