"""Losses: hand-computed values, the gradient penalty really trains the critic."""

from __future__ import annotations

import math

import pytest
import torch

from vawgan.losses import (active_units, critic_loss, gaussian_nll, generator_adv_loss,
                           gradient_penalty, interpolate, kl_standard_normal)


def test_gaussian_nll_sums_over_dims():
    x = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
    mean = torch.zeros(2, 3)
    logvar = torch.tensor([0.0, math.log(4.0), 0.0])
    # frame 1: 0.5*[3 log 2pi + log 4 + 1 + 4/4 + 0]; frame 2: 0.5*[3 log 2pi + log 4]
    f1 = 0.5 * (3 * math.log(2 * math.pi) + math.log(4.0) + 1.0 + 1.0)
    f2 = 0.5 * (3 * math.log(2 * math.pi) + math.log(4.0))
    assert gaussian_nll(x, mean, logvar).item() == pytest.approx((f1 + f2) / 2, rel=1e-6)
    # doubling the number of dims (duplicate columns) doubles the loss: a sum, not a mean
    x2, m2, l2 = torch.cat([x, x], 1), torch.cat([mean, mean], 1), torch.cat([logvar, logvar])
    assert gaussian_nll(x2, m2, l2).item() == pytest.approx(2 * (f1 + f2) / 2, rel=1e-6)


def test_gaussian_nll_matches_torch_distribution():
    g = torch.Generator().manual_seed(0)
    x, mean, lv = (torch.randn(5, 39, generator=g) for _ in range(3))
    ref = -torch.distributions.Normal(mean, torch.exp(0.5 * lv)).log_prob(x).sum(1).mean()
    assert torch.allclose(gaussian_nll(x, mean, lv), ref, atol=1e-5)


def test_kl_standard_normal():
    mu = torch.tensor([[1.0, 0.0]])
    lv = torch.tensor([[0.0, math.log(2.0)]])
    want = 0.5 * (1.0 + 0.0) + 0.5 * (2.0 - 1.0 - math.log(2.0))
    assert kl_standard_normal(mu, lv).item() == pytest.approx(want, rel=1e-6)
    assert kl_standard_normal(torch.zeros(3, 4), torch.zeros(3, 4)).item() == 0.0
    q = torch.distributions.Normal(mu, torch.exp(0.5 * lv))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    assert kl_standard_normal(mu, lv).item() == pytest.approx(
        torch.distributions.kl_divergence(q, p).sum().item(), rel=1e-6)


def test_shape_errors():
    with pytest.raises(ValueError, match="gaussian_nll"):
        gaussian_nll(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(3))
    with pytest.raises(ValueError, match="kl_standard_normal"):
        kl_standard_normal(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="interpolate"):
        interpolate(torch.zeros(2, 1, 3), torch.zeros(3, 1, 3))
    with pytest.raises(ValueError, match="active_units"):
        active_units(torch.zeros(1, 4))


def test_interpolate_one_weight_per_item():
    real = torch.ones(4, 8, 3)
    fake = torch.zeros(4, 8, 3)
    xh = interpolate(real, fake, torch.Generator().manual_seed(0))
    # all frames and dims of one segment share e
    assert torch.all(xh == xh[:, :1, :1])
    assert torch.all((xh >= 0) & (xh <= 1))
    assert len(set(xh[:, 0, 0].tolist())) == 4


class Linear(torch.nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(w))

    def forward(self, x, spk):
        return (x * self.w).flatten(1).sum(1)


def test_gradient_penalty_of_linear_critic():
    # D(x) = w . x has grad w everywhere: GP = (||w|| - 1)^2
    crit = Linear([3.0, 4.0])
    x = torch.randn(6, 1, 2)
    gp = gradient_penalty(crit, x, torch.zeros(6, dtype=torch.long))
    assert gp.item() == pytest.approx((5.0 - 1.0) ** 2)
    # and it is differentiable w.r.t. the critic's weights: d/dw = 2 (||w|| - 1) w / ||w||
    gp.backward()
    assert torch.allclose(crit.w.grad, torch.tensor([2 * 4 * 3 / 5.0, 2 * 4 * 4 / 5.0]))


def test_critic_trained_by_penalty_alone():
    torch.manual_seed(0)
    crit = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.LeakyReLU(0.2), torch.nn.Linear(16, 1))

    def d(x, spk):
        return crit(x)[..., 0].mean(1)

    x = torch.randn(32, 1, 3)
    spk = torch.zeros(32, dtype=torch.long)
    # real == fake: the Wasserstein term has zero gradient, only the penalty remains
    loss0, w0, _ = critic_loss(d, x, x.clone(), spk, gp_lambda=0.0)
    loss0.backward()
    assert w0.item() == 0.0
    assert all(p.grad.abs().max().item() < 1e-6 for p in crit.parameters())
    crit.zero_grad()
    loss, _, gp = critic_loss(d, x, x.clone(), spk, gp_lambda=10.0)
    loss.backward()
    assert gp.item() > 0
    # every weight matrix gets a gradient from the penalty (biases cannot: with a
    # piecewise-linear activation grad_x D does not depend on them almost everywhere)
    for name, p in crit.named_parameters():
        if name.endswith("weight"):
            assert p.grad.abs().max().item() > 1e-3, name


def test_critic_loss_equals_separate_calls():
    torch.manual_seed(1)
    crit = torch.nn.Linear(3, 1)

    def d(x, spk):
        return torch.tanh(crit(x))[..., 0].mean(1)

    real, fake = torch.randn(8, 1, 3), torch.randn(8, 1, 3)
    spk = torch.zeros(8, dtype=torch.long)
    loss, wd, gp = critic_loss(d, real, fake, spk, 10.0, torch.Generator().manual_seed(5))
    xh = interpolate(real, fake, torch.Generator().manual_seed(5))
    gp2 = gradient_penalty(d, xh, spk)
    wd2 = d(real, spk).mean() - d(fake, spk).mean()
    assert torch.allclose(gp, gp2) and torch.allclose(wd, wd2)
    assert torch.allclose(loss, -wd2 + 10.0 * gp2)
    assert torch.allclose(generator_adv_loss(d, fake, spk), -d(fake, spk).mean())


def test_critic_loss_penalty_on_part_of_the_batch():
    """``gp_rows``: the penalty over the first m items, the Wasserstein term over all."""
    torch.manual_seed(2)
    crit = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.LeakyReLU(0.2), torch.nn.Linear(8, 1))

    def d(x, spk):
        return crit(x)[..., 0].mean(1)

    real, fake = torch.randn(16, 1, 3), torch.randn(16, 1, 3)
    spk = torch.arange(16) % 3
    full = critic_loss(d, real, fake, spk, 10.0, torch.Generator().manual_seed(5))
    same = critic_loss(d, real, fake, spk, 10.0, torch.Generator().manual_seed(5), gp_rows=16)
    assert all(torch.equal(a, b) for a, b in zip(full, same))  # m = N: bit for bit
    loss, wd, gp = critic_loss(d, real, fake, spk, 10.0, torch.Generator().manual_seed(5),
                               gp_rows=4)
    xh = interpolate(real[:4], fake[:4], torch.Generator().manual_seed(5))
    assert torch.allclose(gp, gradient_penalty(d, xh, spk[:4]))
    assert torch.allclose(wd, full[1])  # every item in the Wasserstein estimate
    assert not torch.allclose(gp, full[2])
    # the part's penalty still trains every weight matrix of the critic
    loss.backward()
    assert all(p.grad.abs().max() > 0 for n, p in crit.named_parameters() if "weight" in n)
    for bad in (0, 17):
        with pytest.raises(ValueError, match="gp_rows"):
            critic_loss(d, real, fake, spk, 10.0, gp_rows=bad)


def test_active_units():
    mu = torch.zeros(100, 5)
    mu[:, 0] = torch.linspace(-1, 1, 100)  # variance ~0.34
    mu[:, 1] = torch.linspace(-0.1, 0.1, 100)  # variance ~0.0034: inactive
    assert active_units(mu).item() == 1
