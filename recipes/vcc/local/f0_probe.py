#!/usr/bin/env python3
"""How much of a model's reconstruction error the source's log-F0 and voicing explain.

Before giving the decoder the (converted) log-F0 and voicing as inputs, this measures
what they could buy: every speaker's dev sentences are reconstructed by the bundle
(encoded with the posterior mean, decoded with the speaker's own embedding), and the
raw c1..c24 residual of the non-silent frames is fitted by least squares on per-frame
prosody features (1, voicing, speaker-normalized log-F0 z, z^2, its time derivative) on
half of the frames, then tested on the other half. Printed: the reconstruction's
frame-wise mel-cepstral distance (c1..c24, no DTW) before and after the fit, and the
share of squared error left.

    python local/f0_probe.py --dump dump/feats --data data/default \\
        --stats dump/default/stats.json --bundle exp/default/vae.pt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dump", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True, help="data/<tag> with dev.list")
    ap.add_argument("--stats", type=Path, required=True, help="stats.json of the training split")
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--silence-db", type=float, default=-20.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from vawgan.bundle import load_bundle
    from vawgan.corpus import read_utt_list
    from vawgan.features import load_features
    from vawgan.stats import load_stats

    bundle = load_bundle(args.bundle)
    model = bundle.model
    stats = load_stats(args.stats)
    res, feats = [], []
    for spk, utt in read_utt_list(args.data / "dev.list"):
        if spk not in bundle.speakers:
            continue
        f = load_features(args.dump / spk / f"{utt}.npz")
        st = stats[spk]
        x = (f.body - st.mcep_mean) / st.mcep_std
        with torch.no_grad():
            y = model.convert(torch.tensor(x, dtype=torch.float32),
                              torch.tensor(bundle.speaker_id(spk))).numpy()
        keep = f.nonsilent(args.silence_db)
        voiced = (f.f0 > 0).astype(np.float64)
        lz = np.where(voiced > 0, (np.log(np.maximum(f.f0, 1.0)) - st.lf0_mean) / st.lf0_std, 0.0)
        p = np.stack([np.ones_like(voiced), voiced, lz, lz ** 2, np.gradient(lz)], axis=1)
        res.append(((x - y) * st.mcep_std)[keep][:, :24])
        feats.append(p[keep])
    r, p = np.concatenate(res), np.concatenate(feats)
    idx = np.random.default_rng(args.seed).permutation(len(r))
    fit, test = idx[: len(r) // 2], idx[len(r) // 2:]
    w = np.linalg.lstsq(p[fit], r[fit], rcond=None)[0]
    left = r[test] - p[test] @ w
    k = 10.0 / np.log(10.0) * np.sqrt(2.0)
    before = k * np.mean(np.sqrt((r[test] ** 2).sum(1)))
    after = k * np.mean(np.sqrt((left ** 2).sum(1)))
    share = (left ** 2).sum() / (r[test] ** 2).sum()
    print(f"{args.bundle}: {len(r)} frames; reconstruction distance c1..c24 {before:.3f} dB, "
          f"after the prosody fit {after:.3f} dB; squared error left {share:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
