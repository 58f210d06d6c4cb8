#!/usr/bin/env python3
"""Model selection on the dev set at the feature level (no synthesis): fast.

Converts the dev sentences of each pair with every bundle given (posterior mean,
source statistics of the training speaker, optional postfilter), straight from the
feature dump, and compares them with the target's natural features of the same
sentences: MCD (c1..c24, DTW, non-silent) and F0 RMSE per utterance
(``vawgan.uttmetrics.utterance_metrics``), GV distance and MS distance of the converted
set against the natural set (``vawgan.stats.set_gv_ms``). This is what we use to choose
defaults (KL weight, decoder variance, sizes, critic); the recipe's stage 5 reports the
same metrics on resynthesized, re-analyzed speech.

    python local/compare_bundles.py --dump dump/feats --data data/default \\
        --bundle vae=exp/default/vae.pt --bundle vawgan=exp/default/vawgan.pt \\
        --postfilter gv --out exp/compare.md
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from evaluate_pairs import HEADLINE  # noqa: E402  (local/ is on sys.path when run as a script)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dump", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True, help="data/<tag> with dev.list")
    ap.add_argument("--bundle", action="append", required=True, metavar="NAME=PATH",
                    help="a bundle; NAME=PATH1,PATH2 is an ensemble: the bundles' raw "
                         "conversions averaged, then the postfilter (first bundle's stats)")
    ap.add_argument("--pairs", default=" ".join(HEADLINE))
    ap.add_argument("--postfilter", default="none",
                    help="none, gv, ms or a comma list; KIND@ALPHA for a strength below 1, "
                         "KIND:FIRST for the first cepstral order filtered (default "
                         "vawgan.postfilter.DEFAULT_PF_FIRST; e.g. none,gv,gv:1,gv@0.5:3)")
    ap.add_argument("--gv-ratios", action="store_true",
                    help="also print log10(GV_conv / GV_target) per dim (mean over pairs)")
    ap.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = ap.parse_args(argv)

    import numpy as np

    from vawgan import metrics
    from vawgan.bundle import load_bundle
    from vawgan.convert import apply_postfilter, convert_features, speaker_source_stats
    from vawgan.features import load_features
    from vawgan.io import atomic_write_text
    from vawgan.postfilter import DEFAULT_PF_FIRST
    from vawgan.stats import set_gv_ms, stat_frames
    from vawgan.uttmetrics import utterance_metrics

    dev = {}
    for line in (args.data / "dev.list").read_text().split():
        spk, utt = line.split("/")
        dev.setdefault(spk, []).append(utt)
    pairs = [tuple(p.split("-")) for p in args.pairs.split()]
    feats = {}

    def get(spk, utt):
        if (spk, utt) not in feats:
            feats[spk, utt] = load_features(args.dump / spk / f"{utt}.npz")
        return feats[spk, utt]

    def ensemble(members, ssts, f, tgt, pf, alpha, first):
        """The members' raw conversions of ``f`` averaged, then postfiltered."""
        raw = [convert_features(b, f, tgt, sst) for b, sst in zip(members, ssts)]
        body = np.mean([r.mcep[:, 1:] for r in raw], axis=0)
        b0 = members[0]
        body = apply_postfilter(body, b0.stats[tgt], pf, alpha, b0.config.stats.ms_fft,
                                mask=f.nonsilent(b0.config.feature.silence_db), first=first)
        return raw[0].replace(mcep=np.column_stack([raw[0].mcep[:, 0], body]))

    rows = []
    for spec in args.bundle:
        name, paths = spec.split("=", 1)
        members = [load_bundle(p) for p in paths.split(",")]
        bundle = members[0]
        silence_db = bundle.config.feature.silence_db
        ms_fft = bundle.config.stats.ms_fft
        for spec_pf in args.postfilter.split(","):
            spec, _, first = spec_pf.partition(":")
            pf, _, alpha = spec.partition("@")
            alpha = float(alpha) if alpha else 1.0
            first = int(first) if first else DEFAULT_PF_FIRST
            acc = {k: [] for k in ("mcd", "f0_rmse", "gvd", "gvd24", "msd")}
            ratios = []
            for src, tgt in pairs:
                utts = [u for u in dev.get(src, []) if u in dev.get(tgt, [])]
                ssts = [speaker_source_stats(b, src) for b in members]
                if len(members) == 1:
                    conv = [convert_features(bundle, get(src, u), tgt, ssts[0], pf, alpha, first)
                            for u in utts]
                else:
                    conv = [ensemble(members, ssts, get(src, u), tgt, pf, alpha, first)
                            for u in utts]
                refs = [get(tgt, u) for u in utts]
                cmp = [utterance_metrics(c, silence_db=silence_db, ref=r)
                       for c, r in zip(conv, refs)]
                acc["mcd"].append(np.mean([c["mcd"] for c in cmp]))
                acc["f0_rmse"].append(np.nanmean([c["f0_rmse"] for c in cmp]))
                gv_c, ms_c = set_gv_ms([stat_frames(c, silence_db) for c in conv], ms_fft)
                gv_r, ms_r = set_gv_ms([stat_frames(r, silence_db) for r in refs], ms_fft)
                acc["gvd"].append(metrics.gv_distance(gv_c, gv_r))
                acc["gvd24"].append(metrics.gv_distance(gv_c[:24], gv_r[:24]))
                ratios.append(np.log10(gv_c / gv_r))
                acc["msd"].append(metrics.ms_distance(ms_c, ms_r, n_fft=ms_fft, precomputed=True))
            row = {k: float(np.mean(v)) for k, v in acc.items()}
            row["system"] = name if pf == "none" else f"{name}+{spec_pf}"
            rows.append(row)
            print(f"{row['system']:24s} MCD {row['mcd']:.3f}  F0 {row['f0_rmse']:.1f} Hz  "
                  f"GVD {row['gvd']:.3f} (c1..c24 {row['gvd24']:.3f})  MSD {row['msd']:.2f}",
                  flush=True)
            if args.gv_ratios:
                r = np.mean(ratios, axis=0)
                print("  log10 GV ratio per dim: " + " ".join(f"{v:+.2f}" for v in r), flush=True)
    table = ["| system | MCD [dB] | F0 RMSE [Hz] | GVD | GVD c1..c24 | MSD [dB] |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    table += [f"| {r['system']} | {r['mcd']:.3f} | {r['f0_rmse']:.1f} | {r['gvd']:.3f} | "
              f"{r['gvd24']:.3f} | {r['msd']:.2f} |" for r in rows
              if all(math.isfinite(r[k]) for k in ("mcd", "gvd"))]
    text = (f"Feature-level dev comparison, pairs {' '.join(f'{s}-{t}' for s, t in pairs)} "
            "(mean over pairs)\n\n" + "\n".join(table) + "\n")
    if args.out:
        atomic_write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
