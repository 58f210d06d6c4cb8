"""Train a tiny VAW-GAN on two folders of speech with the Python API, then convert.

The whole recipe in one script, small enough for a laptop CPU (about 1-2 minutes):

1. extract: :func:`vawgan.extract.extract_corpus` (WORLD features of every file into a
   dump, ``DUMP/<speaker>/<utt>.npz``);
2. stats: :func:`vawgan.stats.dump_stats` and :func:`vawgan.stats.save_stats`
   (per-speaker mcep mean/std, log-f0, GV, MS of the training utterances);
3. train: :func:`vawgan.data.load_training_data` and :class:`vawgan.train.Trainer` with
   a tiny :class:`vawgan.config.Config` (800 + 100 + 300 steps of the three-phase
   schedule; writes ``vae.pt`` after phase 1 and ``vawgan.pt`` at the end);
4. convert a held-out source utterance to the target with
   :func:`vawgan.convert.convert_file`, and compare the VAE and the VAW-GAN bundles'
   over-smoothing (GV / MS distance to the target's statistics) and, against the
   target's recording of the same sentence, MCD.

Speakers: ``--source-dir`` and ``--target-dir`` (folders of audio files; speaker
names are the folder names). By default the CMU ARCTIC speakers clb and slt at
``../shared/data/cmu_arctic`` (relative to the repository root) when present, else
two synthetic "speakers" made from the ARCTIC wav shipped with pysptk, pitch-shifted
down and up and time-stretched into several "utterances". When the two folders hold
files with the same names (parallel data), one of them is held out of training and
used for the conversion and the MCD; otherwise the last source file is held out.

The run happens in a temporary folder, deleted at the end unless ``--workdir DIR``
is given. A model this small converts badly: the point is the API, not the voice.
The real recipe is ``recipes/vcc/run.sh``.

Run, from the repository root::

    python egs/train_tiny.py                       # ~1-2 min on CPU
    python egs/train_tiny.py --synthetic           # no corpus needed
    python egs/train_tiny.py --source-dir my/src --target-dir my/tgt --workdir /tmp/tiny
    python egs/train_tiny.py --smoke               # a few seconds (the tests use this)

``--smoke`` (or the environment variable ``VAWGAN_EGS_SMOKE=1``) uses the synthetic
speakers (2.5 s, 2 utterances each) and 30 + 10 + 10 training steps.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARCTIC = REPO.parent / "shared" / "data" / "cmu_arctic"
AUDIO = (".wav", ".flac", ".ogg", ".aiff", ".aif")


def tiny_config(smoke: bool):
    """A configuration small enough for a CPU in a minute (see ``vawgan.config``)."""
    from vawgan.config import Config

    steps = (dict(vae_steps=30, critic_steps=10, gan_steps=10) if smoke
             else dict(vae_steps=800, critic_steps=100, gan_steps=300))
    return Config.from_dict({
        "model": {"z_dim": 16, "hidden": 128, "n_layers": 2, "spk_dim": 8,
                  "critic_hidden": 128, "critic_layers": 2},
        "train": {"batch_size": 128, "n_critic": 2, "log_every": 50, "ckpt_every": 10000,
                  "device": "cpu", "threads": 1, **steps},
    })


def synthetic_speakers(root: Path, n_utts: int, seconds: float = 4.0) -> tuple:
    """Two pitch-shifted "speakers" of the pysptk ARCTIC wav, ``n_utts + 1`` files each.

    Utterance k is (the first ``seconds`` of) the wav time-stretched by a rate between
    0.85 and 1.15; both speakers get the same rates, so the data is parallel.
    """
    import librosa
    import numpy as np

    from vawgan.audio import load_audio, write_audio

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pysptk <= 1.0.1 imports pkg_resources
        import pysptk
    x, _ = load_audio(pysptk.util.example_audio_file(), 16000)
    x = x[: int(seconds * 16000)]
    rates = np.linspace(0.85, 1.15, n_utts + 1)
    dirs = []
    for name, semitones in (("low", -3.0), ("high", 4.0)):
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        shifted = librosa.effects.pitch_shift(x.astype(np.float32), sr=16000, n_steps=semitones)
        for k, rate in enumerate(rates):
            y = librosa.effects.time_stretch(shifted, rate=float(rate))
            write_audio(d / f"utt{k:02d}.wav", 0.9 * y / max(1e-9, np.abs(y).max()), 16000)
        dirs.append(d)
    return tuple(dirs)


def audio_files(folder: Path) -> list:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO)
    if len(files) < 2:
        sys.exit(f"{folder}: need at least 2 audio files ({', '.join(AUDIO)})")
    return files


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source-dir", type=Path, help="folder of the source speaker's audio")
    parser.add_argument("--target-dir", type=Path, help="folder of the target speaker's audio")
    parser.add_argument("--synthetic", action="store_true",
                        help="use two pitch-shifted copies of pysptk's ARCTIC wav")
    parser.add_argument("--n-utts", type=int, default=20,
                        help="training utterances per speaker (default 20)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep dump, stats and bundles here (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=Path("tiny_converted.wav"),
                        help="the converted held-out utterance (default tiny_converted.wav)")
    parser.add_argument("--smoke", action="store_true",
                        default=os.environ.get("VAWGAN_EGS_SMOKE", "") not in ("", "0"),
                        help="seconds-long run for tests (also VAWGAN_EGS_SMOKE=1)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    if bool(args.source_dir) != bool(args.target_dir):
        parser.error("give both --source-dir and --target-dir, or neither")

    from vawgan.bundle import load_bundle
    from vawgan.convert import convert_features, convert_file
    from vawgan.data import load_training_data
    from vawgan.extract import extract_corpus
    from vawgan.features import analyze_file
    from vawgan.stats import dump_stats, save_stats
    from vawgan.train import Trainer, set_threads
    from vawgan.uttmetrics import utterance_metrics

    t_start = time.perf_counter()
    cfg = tiny_config(args.smoke)
    n_utts = 2 if args.smoke else args.n_utts
    progress = not (args.smoke or args.json)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="vawgan_tiny_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        # ------------------------------------------------------------ the two speakers
        if args.source_dir:
            src_dir, tgt_dir = args.source_dir, args.target_dir
        elif not (args.synthetic or args.smoke) and (ARCTIC / "clb").is_dir() \
                and (ARCTIC / "slt").is_dir():
            src_dir, tgt_dir = ARCTIC / "clb", ARCTIC / "slt"
        else:
            src_dir, tgt_dir = synthetic_speakers(work / "synthetic", n_utts,
                                                  seconds=2.5 if args.smoke else 4.0)
        src_spk, tgt_spk = src_dir.name, tgt_dir.name
        if src_spk == tgt_spk:
            src_spk, tgt_spk = src_spk + "_src", tgt_spk + "_tgt"
        src_files, tgt_files = audio_files(src_dir), audio_files(tgt_dir)
        # Hold out one sentence: a name both folders share (parallel data), else the
        # last source file. The rest (up to n_utts per speaker) is the training set.
        common = sorted({p.stem for p in src_files} & {p.stem for p in tgt_files})
        held = common[-1] if common else src_files[-1].stem
        train_src = [p for p in src_files if p.stem != held][:n_utts]
        train_tgt = [p for p in tgt_files if p.stem != held][:n_utts]
        held_src = next(p for p in src_files if p.stem == held)
        held_ref = next((p for p in tgt_files if p.stem == held), None)

        # A corpus folder <root>/<speaker>/<utt>.<ext>, as vawgan extract expects
        # (symbolic links to the files, so nothing is copied).
        corpus = work / "corpus"
        for spk, files in ((src_spk, train_src), (tgt_spk, train_tgt)):
            (corpus / spk).mkdir(parents=True, exist_ok=True)
            for p in files:
                link = corpus / spk / p.name
                if not link.exists():
                    link.symlink_to(p.resolve())
        utts = [f"{src_spk}/{p.stem}" for p in train_src] + \
               [f"{tgt_spk}/{p.stem}" for p in train_tgt]

        # ------------------------------------------------------------ 1. features
        dump = work / "dump"
        res = extract_corpus(corpus, dump, cfg, jobs=1, progress=progress)
        if res.failures:
            sys.exit(f"extraction failed for {len(res.failures)} files: {res.failures[0]['error']}")

        # ------------------------------------------------------------ 2. statistics
        stats = dump_stats(dump, cfg, progress=progress)
        save_stats(work / "stats.json", stats, cfg.to_dict()["feature"], cfg.stats.ms_fft)

        # ------------------------------------------------------------ 3. training
        set_threads(cfg.train.threads)
        data = load_training_data(dump, work / "stats.json", utts,
                                  silence_db=cfg.feature.silence_db,
                                  feature_config=cfg.feature, device="cpu", progress=progress)
        exp = work / "exp"
        trainer = Trainer(cfg, data, exp, device="cpu", progress=progress)
        last = trainer.fit()  # phase 1 (VAE) -> vae.pt; phases 2-3 (critic, GAN) -> vawgan.pt
        t_train = time.perf_counter() - t_start

        # ------------------------------------------------------------ 4. conversion
        vae, vawgan = load_bundle(exp / "vae.pt"), load_bundle(exp / "vawgan.pt")
        info = convert_file(vawgan, held_src, args.out, target=tgt_spk, reference=held_ref)
        # The VAE baseline on the same input, without writing a file: features only.
        feats, _ = analyze_file(held_src, vae.config.feature)
        ref = analyze_file(held_ref, vae.config.feature)[0] if held_ref else None
        tgt = vae.stats[tgt_spk]
        vae_metrics = utterance_metrics(convert_features(vae, feats, target=tgt_spk),
                                        silence_db=vae.config.feature.silence_db,
                                        ms_fft=vae.config.stats.ms_fft, target_gv=tgt.gv,
                                        target_ms=tgt.ms, ref=ref)
        summary = {
            "source": src_spk, "target": tgt_spk, "train_utts_per_speaker": len(train_src),
            "train_frames": data.n_frames, "steps": trainer.step, "held_out": held,
            "output": str(args.out), "last_log": last,
            "vae": vae_metrics, "vawgan": info["metrics"],
            "seconds": round(time.perf_counter() - t_start, 1),
            "seconds_until_trained": round(t_train, 1),
            "workdir": str(work) if args.workdir else None,
        }
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    if args.json:
        print(json.dumps(summary, indent=1, default=float))
    else:
        print(f"trained {src_spk} + {tgt_spk}: {summary['train_frames']} frames, "
              f"{summary['steps']} steps, {summary['seconds_until_trained']} s")
        print(f"converted held-out {held} {src_spk} -> {tgt_spk}: {args.out}")
        keys = [k for k in ("gv_distance", "ms_distance", "mcd") if k in summary["vawgan"]]
        for name in ("vae", "vawgan"):
            print(f"  {name:7s} " + ", ".join(f"{k} {summary[name][k]:.3f}" for k in keys))
        if args.workdir:
            print(f"dump, stats.json and exp/ (vae.pt, vawgan.pt) kept in {args.workdir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
