"""``vawgan train``: train the VAE and the VAW-GAN (:mod:`vawgan.train`)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ..config import load_config
from ..errors import CheckpointError, StatsError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dump", required=True, help="feature dump folder (vawgan extract)")
    parser.add_argument("--stats", required=True, help="stats.json (vawgan stats)")
    parser.add_argument("--utts-file", required=True,
                        help="training utterances, one 'speaker/utt' per line")
    parser.add_argument("--config", default=None, help="YAML config (defaults if omitted)")
    parser.add_argument("--outdir", required=True, help="experiment folder")
    parser.add_argument("--resume", action="store_true",
                        help="continue from OUTDIR/checkpoint.pt")
    parser.add_argument("--device", default=None, choices=("auto", "cpu", "cuda"),
                        help="overrides train.device")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (overrides train.threads; 0 = auto)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--init-vae", default=None, metavar="BUNDLE",
                        help="start at phase 2 from the encoder/decoder of a VAE bundle made "
                             "with the same model settings and data (skips VAE pre-training; "
                             "e.g. to try critic variants from one pre-training)")


def run(args: argparse.Namespace) -> int:
    from ..data import load_training_data
    from ..stats import load_stats_document
    from ..train import CKPT_NAME, Trainer, resolve_device, set_threads

    cfg = load_config(args.config)
    if args.device is not None:
        cfg.train = dataclasses.replace(cfg.train, device=args.device)
    if args.threads is not None:
        cfg.train = dataclasses.replace(cfg.train, threads=args.threads)
    outdir = Path(args.outdir)
    ckpt = outdir / CKPT_NAME
    if ckpt.exists() and not args.resume:
        raise CheckpointError(f"{ckpt}: a run exists here; pass --resume to continue it "
                              "or choose another --outdir")
    if args.resume and not ckpt.exists():
        raise CheckpointError(f"{ckpt}: no checkpoint to resume from")
    stats_fft = load_stats_document(args.stats)["ms_fft"]
    if stats_fft != cfg.stats.ms_fft:  # else the bundle at the end would not load
        raise StatsError(f"{args.stats}: computed with ms_fft {stats_fft}, the config has "
                         f"stats.ms_fft {cfg.stats.ms_fft}; rerun vawgan stats with this config")
    device = resolve_device(cfg.train.device)
    threads = set_threads(cfg.train.threads)
    progress = not args.no_progress
    data = load_training_data(args.dump, args.stats, args.utts_file,
                              silence_db=cfg.feature.silence_db, feature_config=cfg.feature,
                              device=device, progress=progress)
    print(f"vawgan train: {data.n_speech} non-silent frames (of {data.n_frames}), "
          f"{len(data.utt_len)} utterances, "
          f"{data.n_speakers} speakers ({', '.join(data.speakers)}); device {device}, "
          f"{threads} CPU threads")
    trainer = Trainer(cfg, data, outdir, device=device, progress=progress)
    print(f"vawgan train: precision {trainer.runner.precision} "
          f"(train.precision {cfg.train.precision}: {trainer.runner.precision_reason})")
    if args.resume:
        trainer.load_checkpoint()
        print(f"vawgan train: resumed at step {trainer.step} (phase {trainer.phase()})")
    elif args.init_vae:
        trainer.init_from_vae(args.init_vae)
        print(f"vawgan train: encoder/decoder from {args.init_vae}; starting at step "
              f"{trainer.step} (phase {trainer.phase()})")
    if trainer.step >= trainer.total:
        print("vawgan train: already finished")
        if cfg.train.gan_steps > 0 and not (outdir / "vawgan.pt").exists():
            trainer.save_bundle("vawgan")
        return 0
    trainer.fit()
    made = [str(outdir / f"{k}.pt") for k in ("vae", "vawgan") if (outdir / f"{k}.pt").exists()]
    print(f"vawgan train: done; bundles: {', '.join(made) or 'none'}")
    return 0
