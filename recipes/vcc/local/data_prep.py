#!/usr/bin/env python3
"""Stage 0 of the VCC2016 recipe: utterance lists and the train / dev / eval split.

Reads the ``data`` section of the recipe config (speakers, held-out sentence ids, caps)
and writes, under ``--out``:

* ``train.list``, ``dev.list`` (and ``eval.list`` when ``evaluation_all`` exists):
  one ``speaker/utt`` per line, the format ``vawgan stats`` / ``vawgan train`` read;
* ``dev/<spk>.list`` (and ``eval/<spk>.list``): one audio path per line, for
  ``vawgan convert --in`` and ``vawgan evaluate``;
* ``corpus``: the training corpus folder; ``eval_corpus`` when there is one.

Accepts the audio files ``vawgan extract`` reads (``vawgan.corpus.AUDIO_EXTENSIONS``):
WAV in the official zips, FLAC in ``../shared/data/vcc2016``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def find_training_dir(db: Path) -> Path:
    for cand in (db / "vcc2016_training", db):
        if cand.is_dir() and any(p.is_dir() for p in cand.iterdir()):
            return cand
    raise SystemExit(f"data_prep: {db}: no speaker folders found (expected <db>/vcc2016_training/<SPK>/)")


def find_eval_dir(db: Path) -> Path | None:
    for cand in (db / "evaluation_all", db.parent / "evaluation_all"):
        if cand.is_dir():
            return cand
    return None


def list_utts(folder: Path) -> dict:
    from vawgan.corpus import is_audio

    return {p.stem: p for p in sorted(folder.iterdir()) if is_audio(p)}


def write_lines(path: Path, lines) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(f"{x}\n" for x in lines))
    tmp.replace(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True, type=Path, help="VCC2016 folder (or its vcc2016_training)")
    ap.add_argument("--conf", required=True, type=Path, help="recipe YAML (data section)")
    ap.add_argument("--out", required=True, type=Path, help="output folder (data/)")
    args = ap.parse_args(argv)

    from vawgan.config import load_config
    from vawgan.corpus import parse_utt_spec
    from vawgan.errors import VawganError

    try:
        cfg = load_config(args.conf).data
    except VawganError as e:
        print(f"data_prep: {e}", file=sys.stderr)
        return 1
    train_dir = find_training_dir(args.db)
    try:
        dev_ids = parse_utt_spec([cfg.dev_utts])
    except ValueError as e:
        print(f"data_prep: {args.conf}: data.dev_utts: {e}", file=sys.stderr)
        return 1
    train, dev = [], []
    for spk in cfg.speakers():
        folder = train_dir / spk
        if not folder.is_dir():
            print(f"data_prep: {folder}: speaker folder missing", file=sys.stderr)
            return 1
        utts = list_utts(folder)
        tr = [u for u in utts if u not in dev_ids][: cfg.max_train_utts]
        dv = [u for u in utts if u in dev_ids][: cfg.max_dev_utts]
        if not tr:
            print(f"data_prep: {folder}: no training utterances", file=sys.stderr)
            return 1
        train += [f"{spk}/{u}" for u in tr]
        dev += [f"{spk}/{u}" for u in dv]
        write_lines(args.out / "dev" / f"{spk}.list", [utts[u].resolve() for u in dv])
    write_lines(args.out / "train.list", train)
    write_lines(args.out / "dev.list", dev)
    write_lines(args.out / "corpus", [train_dir.resolve()])
    n_eval = 0
    eval_dir = find_eval_dir(args.db)
    if eval_dir is not None:
        ev = []
        for spk in cfg.speakers():
            if (eval_dir / spk).is_dir():
                utts = list_utts(eval_dir / spk)
                ev += [f"{spk}/{u}" for u in utts]
                write_lines(args.out / "eval" / f"{spk}.list", [p.resolve() for p in utts.values()])
        write_lines(args.out / "eval.list", ev)
        write_lines(args.out / "eval_corpus", [eval_dir.resolve()])
        n_eval = len(ev)
    print(f"data_prep: {len(cfg.speakers())} speakers, train {len(train)}, dev {len(dev)}, "
          f"eval {n_eval} utterances -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
