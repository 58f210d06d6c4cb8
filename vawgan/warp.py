"""Frequency warping of mel-cepstra: the all-pass (VTLN) transform as matrices.

Warping a spectral envelope's frequency axis by the first-order all-pass function of
constant ``beta`` moves its formants up (``beta > 0``) or down, which is how vocal
tracts of different lengths differ. On cepstra the transform is linear, the
recursion of ``pysptk.freqt``; :func:`warp_matrices` takes its matrices from
``freqt`` itself (the images of the unit vectors), so it is that transform exactly.
c0 (the mean log level) maps only to c0, so c1..cM transform among themselves.

:class:`WarpAugment` uses them in training (``train.warp``): the encoder sees each frame
warped by a random ``beta`` while the decoder still reconstructs the frame as spoken,
which rewards a latent code that does not carry the vocal tract's length.

Example
-------
>>> A = warp_matrices([0.0, 0.05], order=39)
>>> A.shape
(2, 39, 39)
"""

from __future__ import annotations

from typing import Mapping, Sequence, Tuple

import numpy as np


def warp_matrices(betas: Sequence[float], order: int = 39) -> np.ndarray:
    """Matrices of the all-pass frequency warp of c1..c_order.

    Parameters
    ----------
    betas : sequence of float, each in (-1, 1)
        All-pass constants (0 = identity).
    order : int
        Cepstral order M (the mel-cepstrum has c0..cM).

    Returns
    -------
    ndarray, shape (K, M, M)
        ``A[k] @ c[1:]`` is c1..cM of ``pysptk.freqt(c, M, betas[k])``.
    """
    import pysptk

    betas = [float(b) for b in betas]
    if order < 1:
        raise ValueError(f"warp_matrices: order={order} must be >= 1")
    if any(not -1 < b < 1 for b in betas):
        raise ValueError(f"warp_matrices: every beta must be in (-1, 1), got {betas}")
    out = np.empty((len(betas), order, order))
    eye = np.eye(order + 1)
    for k, b in enumerate(betas):
        for j in range(1, order + 1):  # column j: the image of c_j
            out[k, :, j - 1] = pysptk.freqt(eye[j], order, b)[1:]
    return out


class WarpAugment:
    """Random frequency warps of z-scored encoder inputs (training augmentation).

    Each row gets one of ``n_bins`` constants evenly spaced over ``[-max_beta,
    max_beta]`` (drawn with the training generator): its frames are de-normalized with
    their speaker's statistics, warped (:func:`warp_matrices`) and z-scored again with
    the same statistics.

    Parameters
    ----------
    max_beta : float
        Largest |beta|, in (0, 0.5).
    stats : mapping speaker -> (mean (D,), std (D,))
        The z-scoring of the training frames (:attr:`vawgan.data.TrainingData.stats`).
    speakers : sequence of str
        Speaker names in id order.
    device : torch.device
    n_bins : int
        Number of warp constants (odd, so 0 is one of them).
    """

    def __init__(self, max_beta: float, stats: Mapping[str, Tuple[np.ndarray, np.ndarray]],
                 speakers: Sequence[str], device, n_bins: int = 21):
        import torch

        if not 0 < max_beta < 0.5:
            raise ValueError(f"WarpAugment: max_beta={max_beta} must be in (0, 0.5)")
        if n_bins < 2:
            raise ValueError(f"WarpAugment: n_bins={n_bins} must be >= 2")
        mean = np.stack([np.asarray(stats[s][0], dtype=np.float64) for s in speakers])
        std = np.stack([np.asarray(stats[s][1], dtype=np.float64) for s in speakers])
        D = mean.shape[1]
        A = warp_matrices(np.linspace(-max_beta, max_beta, n_bins), order=D)  # (K, D, D)
        # z' = (A (z s + m) - m) / s = M z + b, per (warp k, speaker s); stored transposed
        # for row vectors: z' = z @ Mt[k, s] + b[k, s]
        M = A[:, None] * std[None, :, None, :] / std[None, :, :, None]  # (K, S, D, D)
        b = (np.einsum("kij,sj->ksi", A, mean) - mean[None]) / std[None]  # (K, S, D)
        self.Mt = torch.tensor(np.swapaxes(M, -1, -2), dtype=torch.float32, device=device)
        self.b = torch.tensor(b, dtype=torch.float32, device=device)
        self.n_bins = int(n_bins)
        self.n_dims = int(D)

    def __call__(self, xin, spk, generator):
        """Warp encoder inputs.

        Parameters
        ----------
        xin : Tensor, shape (N, W * D) or (N, L, D)
            Context windows of W frames (frames concatenated), or segments of L frames.
        spk : LongTensor, shape (N,)
        generator : torch.Generator

        Returns
        -------
        Tensor, the shape of ``xin``: every frame of row n warped by row n's constant.
        """
        import torch

        k = torch.randint(0, self.n_bins, spk.shape, generator=generator, device=spk.device)
        shape = xin.shape
        x = xin.reshape(shape[0], -1, self.n_dims)  # (N, W, D)
        y = torch.bmm(x, self.Mt[k, spk]) + self.b[k, spk][:, None, :]
        return y.reshape(shape)
