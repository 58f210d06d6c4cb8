#!/usr/bin/env python3
"""Speaker information left in the latent code: a classifier probe on z.

Encodes the non-silent frames of every speaker's sentences with each bundle's encoder
(the posterior mean, as conversion uses it), trains a small MLP classifier to tell the
speaker from one frame's z on the training sentences, and reports its accuracy on the
dev sentences (chance = 1 / speakers). The lower, the less of the source speaker the
decoder can hear at conversion (the more speaker-independent the code).

    python local/z_leakage.py --dump dump/feats --data data/default \\
        --bundle vae=exp/default/vae.pt [--bundle ...] [--train-utts 30]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dump", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True, help="data/<tag> with train/dev lists")
    ap.add_argument("--bundle", action="append", required=True, metavar="NAME=PATH")
    ap.add_argument("--train-utts", type=int, default=30, help="training sentences per speaker")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from vawgan.bundle import load_bundle
    from vawgan.corpus import read_utt_list
    from vawgan.features import load_features

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    lists = {s: read_utt_list(args.data / f"{s}.list") for s in ("train", "dev")}
    for name, path in (b.split("=", 1) for b in args.bundle):
        b = load_bundle(path)
        model = b.model.eval()
        spk_ids = {s: i for i, s in enumerate(b.speakers)}
        sets = {}
        for split, pairs in lists.items():
            per = {}
            for spk, utt in pairs:
                if spk in spk_ids and len(per.setdefault(spk, [])) < (
                        args.train_utts if split == "train" else 10 ** 9):
                    per[spk].append(utt)
            zs, ys = [], []
            mean, std = None, None
            for spk, utts in per.items():
                st = b.mcep_stats(spk)
                for utt in utts:
                    f = load_features(args.dump / spk / f"{utt}.npz")
                    x = torch.from_numpy(((f.body - st[0]) / st[1]).astype(np.float32))
                    with torch.no_grad():
                        if model.cfg.arch == "conv":
                            mu = model.encoder(x[None])[0][0]
                        else:
                            from vawgan.model import context_windows
                            mu = model.encoder(context_windows(x, model.cfg.context))[0]
                    keep = torch.from_numpy(f.nonsilent(b.config.feature.silence_db))
                    zs.append(mu[keep])
                    ys.append(torch.full((int(keep.sum()),), spk_ids[spk]))
            sets[split] = (torch.cat(zs), torch.cat(ys))
        (ztr, ytr), (zdv, ydv) = sets["train"], sets["dev"]
        m, s = ztr.mean(0), ztr.std(0) + 1e-6
        clf = torch.nn.Sequential(torch.nn.Linear(ztr.shape[1], 256), torch.nn.ReLU(),
                                  torch.nn.Linear(256, len(spk_ids)))
        opt = torch.optim.Adam(clf.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(args.seed)
        for _ in range(args.steps):
            i = torch.randint(0, len(ytr), (512,), generator=g)
            loss = torch.nn.functional.cross_entropy(clf((ztr[i] - m) / s), ytr[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            acc = (clf((zdv - m) / s).argmax(-1) == ydv).float().mean().item()
        print(f"{name:16s} speaker accuracy from one frame's z on dev: {100 * acc:.1f}% "
              f"(chance {100 / len(spk_ids):.1f}%, {len(ydv)} frames)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
