"""The over-smoothing and distortion metrics of :mod:`vawgan.metrics` on your own arrays.

Nothing here needs vawgan's features: every function takes numpy arrays of shape
(T, D) (frames x dims), a list of such arrays (utterances of different lengths), or a
padded batch (B, T, D) with ``lengths``. The example makes a "natural" trajectory and
an over-smoothed "converted" copy of it (a moving average shrunk toward the mean, the
way a VAE output looks), then computes

* GV (:func:`~vawgan.metrics.global_variance`) and the GV distance;
* the modulation spectrum (:func:`~vawgan.metrics.modulation_spectrum`) and MS distance;
* MCD after DTW (:func:`~vawgan.metrics.mel_cepstral_distortion`; column 0 is c0 and is
  left out);
* F0 RMSE, log-F0 correlation and V/UV error on two f0 tracks (0 = unvoiced);
* and, to close the loop, the GV postfilter (:func:`vawgan.postfilter.gv_postfilter`)
  that pulls the converted GV back to the natural one.

Run::

    python egs/metrics_on_your_features.py
    python egs/metrics_on_your_features.py --conv conv.npy --ref ref.npy   # your (T, M+1) mcep

With ``--conv`` / ``--ref``, each .npy holds a (T, M+1) mel-cepstrum c0..cM; GV and MS
are computed on c1..cM, MCD on c1..c24 (or fewer if M < 24).
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def make_example(T: int = 600, D: int = 40, seed: int = 0):
    """A natural-looking (T, D) c0..c(D-1) trajectory and an over-smoothed copy, plus f0."""
    rng = np.random.default_rng(seed)
    x = np.zeros((T, D))
    for t in range(1, T):  # AR(1) trajectories, decreasing variance with the dim
        x[t] = 0.85 * x[t - 1] + rng.normal(scale=0.5 / (1 + np.arange(D) / 4), size=D)
    kernel = np.ones(7) / 7
    smooth = np.stack([np.convolve(x[:, d], kernel, mode="same") for d in range(D)], axis=1)
    conv = x.mean(0) + 0.7 * (smooth - x.mean(0))
    f0_ref = np.where(rng.random(T) > 0.3, 120 + 20 * np.sin(np.arange(T) / 40), 0.0)
    f0_conv = np.where(f0_ref > 0, f0_ref * 1.05 + rng.normal(scale=3, size=T), 0.0)
    f0_conv[rng.random(T) < 0.03] = 0.0  # a few voicing errors
    return conv, x, f0_conv, f0_ref


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conv", help=".npy (T, M+1) mel-cepstrum of the converted speech")
    parser.add_argument("--ref", help=".npy (T', M+1) mel-cepstrum of the reference")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    from vawgan import metrics
    from vawgan.postfilter import gv_postfilter

    if bool(args.conv) != bool(args.ref):
        parser.error("give both --conv and --ref, or neither")
    if args.conv:
        conv, ref = np.load(args.conv), np.load(args.ref)
        f0_conv = f0_ref = None
    else:
        conv, ref, f0_conv, f0_ref = make_example()
    body_c, body_r = conv[:, 1:], ref[:, 1:]  # c1..cM: what GV / MS are about

    out = {}
    gv_c, gv_r = metrics.global_variance(body_c), metrics.global_variance(body_r)  # (M,)
    out["gv_ratio_mean"] = float(np.mean(gv_c / gv_r))
    out["gv_distance"] = metrics.gv_distance(gv_c, gv_r)          # GV vectors or utterances
    ms_r = metrics.modulation_spectrum(body_r, n_fft=256)           # (129, M) dB
    out["ms_distance_db"] = metrics.ms_distance(body_c, ms_r, precomputed="target")
    out["ms_distance_db_below_25hz"] = metrics.ms_distance(body_c, body_r, band=(0.0, 25.0))
    out["mcd_db"] = metrics.mel_cepstral_distortion(conv, ref, dims=min(24, conv.shape[1] - 1))
    if f0_conv is not None:  # F0 metrics need aligned tracks of equal length
        out["f0_rmse_hz"] = metrics.f0_rmse(f0_conv, f0_ref)
        out["logf0_corr"] = metrics.logf0_correlation(f0_conv, f0_ref)
        out["vuv_error"] = metrics.vuv_error(f0_conv, f0_ref)

    # The same GV from other input forms: a list of utterances, a padded batch.
    halves = [body_r[: len(body_r) // 2], body_r[len(body_r) // 2:]]
    batch = np.zeros((2, len(halves[1]), body_r.shape[1]))
    batch[0, : len(halves[0])], batch[1] = halves
    gv_list = metrics.global_variance(halves)
    gv_batch = metrics.global_variance(batch, lengths=[len(halves[0]), len(halves[1])])
    out["list_equals_padded_batch"] = bool(np.allclose(gv_list, gv_batch))

    # The GV postfilter pulls the over-smoothed GV back to the natural one.
    post = gv_postfilter(body_c, gv_r)
    out["gv_distance_after_gv_postfilter"] = metrics.gv_distance(post, gv_r)

    if args.json:
        print(json.dumps(out, indent=1))
    else:
        for k, v in out.items():
            print(f"{k:32s} {v:.4f}" if isinstance(v, float) else f"{k:32s} {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
