"""Losses of the VAE-WGAN-GP.

* :func:`gaussian_nll`: reconstruction, a Gaussian negative log-likelihood **summed over
  feature dims** and averaged over frames;
* :func:`kl_standard_normal`: KL(q(z|x) || N(0, I)) summed over latent dims, averaged
  over frames;
* :func:`critic_loss`, :func:`gradient_penalty`, :func:`generator_adv_loss`: the
  Wasserstein GAN with gradient penalty (Gulrajani et al. 2017);
* :func:`active_units`: the number of active latent dims (Burda et al. 2016).

Why sums over dims: the evidence lower bound of one frame is
``E_q[log p(x|z)] - KL(q(z|x) || p(z))`` with ``log p(x|z) = sum_d log N(x_d; mu_d, s_d^2)``
and ``KL = sum_k KL_k``; both are sums. Taking the *mean* over the 39 feature dims
instead divides the reconstruction term by 39 while the KL keeps its full weight, so
the KL swamps the reconstruction, the posterior collapses onto the prior in most
latent dims and the decoder output is over-smoothed.

References
----------
I. Gulrajani et al., "Improved training of Wasserstein GANs", NeurIPS 2017.
Y. Burda, R. Grosse, R. Salakhutdinov, "Importance weighted autoencoders", ICLR 2016.
"""

from __future__ import annotations

import math
from typing import Tuple

import torch

_LOG_2PI = math.log(2.0 * math.pi)


def _frame_mean(per_frame: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over frames, or over the frames of ``mask`` (same shape) when given."""
    if mask is None:
        return per_frame.mean()
    if mask.shape != per_frame.shape:
        raise ValueError(f"mask {tuple(mask.shape)} does not match the frames "
                         f"{tuple(per_frame.shape)}")
    m = mask.to(per_frame.dtype)
    return (per_frame * m).sum() / m.sum().clamp_min(1.0)


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor,
                 weight: torch.Tensor | None = None,
                 mask: torch.Tensor | None = None) -> torch.Tensor:
    """Gaussian negative log-likelihood, summed over the last dim, mean over the rest.

    ``0.5 * sum_d w_d [log(2 pi) + logvar_d + (x_d - mean_d)^2 / exp(logvar_d)]``
    (``w_d = 1`` without ``weight``).

    Parameters
    ----------
    x, mean : Tensor, shape (..., D)
    logvar : Tensor, broadcastable to (..., D)
        E.g. (D,) for a learned per-dim variance, zeros for unit variance.
    weight : Tensor, shape (D,), optional
        Per-dim weights (``vawgan.trainstep.rec_weights``).
    mask : BoolTensor, shape (...), optional
        Frames that count (e.g. the non-silent frames of segments); the mean is over
        them.

    Returns
    -------
    Tensor, shape ()
        In nats per frame.
    """
    if x.shape != mean.shape:
        raise ValueError(f"gaussian_nll: x {tuple(x.shape)} and mean {tuple(mean.shape)} differ")
    per = logvar + (x - mean).pow(2) * torch.exp(-logvar)
    if weight is None and mask is None:
        return 0.5 * (per.sum(dim=-1).mean() + x.shape[-1] * _LOG_2PI)
    if weight is None:
        return 0.5 * (_frame_mean(per.sum(dim=-1), mask) + x.shape[-1] * _LOG_2PI)
    return 0.5 * _frame_mean(((per + _LOG_2PI) * weight).sum(dim=-1), mask)


def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor,
                       mask: torch.Tensor | None = None) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)), summed over the last dim, mean over the rest.

    ``0.5 * sum_k [mu_k^2 + exp(logvar_k) - 1 - logvar_k]``

    Parameters
    ----------
    mu, logvar : Tensor, shape (..., K)
    mask : BoolTensor, shape (...), optional
        Frames that count; the mean is over them.

    Returns
    -------
    Tensor, shape ()
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"kl_standard_normal: mu {tuple(mu.shape)} and logvar "
                         f"{tuple(logvar.shape)} differ")
    per = 0.5 * (mu.pow(2) + torch.exp(logvar) - 1.0 - logvar).sum(dim=-1)
    return per.mean() if mask is None else _frame_mean(per, mask)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """``z = mu + exp(logvar / 2) * eps`` with ``eps ~ N(0, I)`` drawn from ``generator``."""
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


def interpolate(real: torch.Tensor, fake: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """``x_hat = e * real + (1 - e) * fake`` with one ``e ~ U(0, 1)`` per item.

    Parameters
    ----------
    real, fake : Tensor, shape (N, ...)
        Items are frames (N, 1, D) or segments (N, L, D); ``e`` is shared within an item.

    Returns
    -------
    Tensor, shape (N, ...)
    """
    if real.shape != fake.shape:
        raise ValueError(f"interpolate: real {tuple(real.shape)} and fake {tuple(fake.shape)} differ")
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    e = torch.rand(shape, generator=generator, device=real.device, dtype=real.dtype)
    return fake + e * (real - fake)


def gradient_penalty(critic, x_hat: torch.Tensor, spk: torch.Tensor,
                     scores: torch.Tensor | None = None) -> torch.Tensor:
    """``mean_i (||grad_x D(x_hat_i, s_i)||_2 - 1)^2`` (without the lambda).

    The gradient is taken with ``torch.autograd.grad(..., create_graph=True)`` so the
    penalty itself is differentiable and trains the critic. The norm is over everything
    but the first axis: one frame's 39 dims, or a whole segment for the conv critic.

    Parameters
    ----------
    critic : callable ``(x, spk) -> (N,)``
    x_hat : Tensor, shape (N, ...)
        Must require grad (or ``scores`` must be given and depend on it).
    spk : LongTensor, shape (N,)
    scores : Tensor, shape (N,), optional
        ``critic(x_hat, spk)`` when already computed (e.g. inside a larger batch).

    Returns
    -------
    Tensor, shape ()
    """
    if scores is None:
        if not x_hat.requires_grad:
            x_hat = x_hat.detach().requires_grad_(True)
        scores = critic(x_hat, spk)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norm = grad.flatten(1).norm(2, dim=1)
    return (norm - 1.0).pow(2).mean()


def critic_loss(critic, real: torch.Tensor, fake: torch.Tensor, spk: torch.Tensor,
                gp_lambda: float, generator: torch.Generator | None = None,
                gp_rows: int | None = None) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """WGAN-GP critic loss ``D(fake) - D(real) + lambda * GP`` (to be minimized).

    Real and fake items go through the critic as one batch (the critic treats items
    independently, so this equals two calls); the interpolates go separately, so that
    the input-gradient and its double backward run over N rows, not 3N.

    Parameters
    ----------
    critic : callable ``(x, spk) -> (N,)``
    real, fake : Tensor, shape (N, L, D)
        Real frames/segments of speakers ``spk`` and converted ones to ``spk``; ``fake``
        should be detached from the generator.
    spk : LongTensor, shape (N,)
    gp_lambda : float
    generator : torch.Generator, optional
        For the interpolation weights.
    gp_rows : int, optional
        The penalty over the first ``gp_rows`` items only (``train.gp_fraction``; the
        items of a batch are drawn at random, so these are a random subset). Default:
        all ``N``; with ``gp_rows == N`` the result is the same, bit for bit.

    Returns
    -------
    loss : Tensor, shape ()
    wdist : Tensor, shape ()
        ``mean D(real) - mean D(fake)``, the Wasserstein estimate (detached).
    gp : Tensor, shape ()
        The penalty without lambda (detached).
    """
    n = real.shape[0]
    m = n if gp_rows is None else gp_rows
    if not 1 <= m <= n:
        raise ValueError(f"critic_loss: gp_rows={gp_rows} for a batch of {n} items")
    x_hat = interpolate(real[:m], fake[:m], generator).requires_grad_(True)
    gp = gradient_penalty(critic, x_hat, spk[:m])
    scores = critic(torch.cat([real, fake]), spk.repeat(2))
    s_real, s_fake = scores[:n], scores[n:]
    wdist = s_real.mean() - s_fake.mean()
    return -wdist + gp_lambda * gp, wdist.detach(), gp.detach()


def generator_adv_loss(critic, fake: torch.Tensor, spk: torch.Tensor) -> torch.Tensor:
    """``-mean D(fake, s)``: the generator's Wasserstein loss.

    Parameters
    ----------
    fake : Tensor, shape (N, L, D)
    spk : LongTensor, shape (N,)
    """
    return -critic(fake, spk).mean()


def active_units(mu: torch.Tensor, threshold: float = 0.01) -> torch.Tensor:
    """Number of latent dims whose posterior mean varies over the batch (Burda et al.).

    A dim k is active when ``Var_x[E_q(z|x)[z_k]] > threshold``.

    Parameters
    ----------
    mu : Tensor, shape (N, K) or (N, L, K)
        Posterior means of a batch (of frames, or of segments: all frames count).

    Returns
    -------
    Tensor, shape () (integer-valued, on mu's device: no host sync)
    """
    if mu.dim() == 3:
        mu = mu.reshape(-1, mu.shape[-1])
    if mu.dim() != 2 or mu.shape[0] < 2:
        raise ValueError(f"active_units: need (N >= 2, K) posterior means, got {tuple(mu.shape)}")
    return (mu.detach().var(dim=0) > threshold).sum()
