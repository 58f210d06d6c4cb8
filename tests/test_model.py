"""Networks: shapes, variance modes, critic independence between items, config checks."""

from __future__ import annotations

import pytest
import torch

from vawgan.config import Config, ModelConfig
from vawgan.errors import ConfigError
from vawgan.model import ConvCritic, FrameCritic, build_model


def cfg(**kw) -> ModelConfig:
    base = {"hidden": 16, "n_layers": 2, "z_dim": 5, "spk_dim": 3, "critic_hidden": 8,
            "critic_layers": 2, "segment": 6, "context": 0}
    base.update(kw)
    return Config.from_dict({"model": base}).model


@pytest.mark.parametrize("variance", ["unit", "learned", "frame"])
def test_shapes(variance):
    torch.manual_seed(0)
    m = build_model(cfg(decoder_variance=variance), n_speakers=4)
    x = torch.randn(10, 39)
    mu, lv = m.encoder(x)
    assert mu.shape == lv.shape == (10, 5)
    mean, dlv = m.decoder(mu, torch.arange(10) % 4)
    assert mean.shape == (10, 39)
    assert dlv.shape == {"unit": (39,), "learned": (39,), "frame": (10, 39)}[variance]
    if variance == "unit":
        assert torch.all(dlv == 0) and m.decoder.logvar is None
    assert torch.all(dlv >= m.decoder.min_logvar)
    assert m.convert(x, torch.tensor(2)).shape == (10, 39)
    assert m.critic(x[:, None, :], torch.zeros(10, dtype=torch.long)).shape == (10,)


def test_decoder_depends_on_speaker():
    torch.manual_seed(0)
    m = build_model(cfg(), n_speakers=3)
    z = torch.randn(4, 5)
    a = m.decoder(z, torch.zeros(4, dtype=torch.long))[0]
    b = m.decoder(z, torch.ones(4, dtype=torch.long))[0]
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_critic_scores_items_independently(arch):
    torch.manual_seed(0)
    m = build_model(cfg(critic_arch=arch), n_speakers=3)
    assert isinstance(m.critic, ConvCritic if arch == "conv" else FrameCritic)
    x = torch.randn(5, 6, 39)
    spk = torch.tensor([0, 1, 2, 0, 1])
    full = m.critic(x, spk)
    assert full.shape == (5,)
    for i in range(5):  # no batch statistics: an item's score ignores the others
        assert torch.allclose(m.critic(x[i:i + 1], spk[i:i + 1]), full[i:i + 1], atol=1e-6)
    # conditioned on the speaker
    assert not torch.allclose(m.critic(x, (spk + 1) % 3), full)


def test_conv_critic_sees_trajectories():
    torch.manual_seed(0)
    m = build_model(cfg(critic_arch="conv"), n_speakers=1)
    x = torch.randn(1, 6, 39)
    spk = torch.zeros(1, dtype=torch.long)
    shuffled = x[:, torch.tensor([3, 1, 5, 0, 2, 4])]
    # a frame critic's mean score is order-invariant, the conv critic's is not
    assert not torch.allclose(m.critic(x, spk), m.critic(shuffled, spk))
    f = build_model(cfg(), n_speakers=1)
    assert torch.allclose(f.critic(x, spk), f.critic(shuffled, spk), atol=1e-6)


def test_config_validation():
    with pytest.raises(ConfigError, match="critic_arch"):
        cfg(critic_arch="rnn")
    with pytest.raises(ConfigError, match="decoder_variance"):
        cfg(decoder_variance="fixed")
    with pytest.raises(ConfigError, match="conv_kernel"):
        cfg(conv_kernel=4)
    with pytest.raises(ConfigError, match="z_dim"):
        cfg(z_dim=0)
    with pytest.raises(ConfigError, match="unknown config key model.zdim"):
        Config.from_dict({"model": {"zdim": 3}})
    with pytest.raises(ConfigError, match="adv_balance"):
        Config.from_dict({"train": {"adv_balance": "auto"}})
    with pytest.raises(ConfigError, match="critic_betas"):
        Config.from_dict({"train": {"critic_betas": "0.5"}})
    with pytest.raises(ValueError, match="n_speakers"):
        build_model(cfg(), n_speakers=0)
    assert cfg(critic_arch="conv", segment=7).unit_length() == 7
    assert cfg(segment=7).unit_length() == 1


# ---------------------------------------------------------------------- model.context
def test_context_windows_clamp_at_edges():
    from vawgan.model import context_windows

    x = torch.tensor([[0.0, 10.0], [1.0, 11.0], [2.0, 12.0]])  # T=3, D=2
    w = context_windows(x, 2)
    assert w.shape == (3, 10)
    frames = w.reshape(3, 5, 2)[..., 0]  # which frame fills each slot t-2..t+2
    assert frames.tolist() == [[0, 0, 0, 1, 2], [0, 0, 1, 2, 2], [0, 1, 2, 2, 2]]
    assert torch.equal(w.reshape(3, 5, 2)[..., 1], frames + 10)
    assert context_windows(x, 0) is x
    assert context_windows(x[:1], 3).tolist() == [[0.0, 10.0] * 7]  # one frame: all copies
    assert context_windows(x[:0], 2).shape == (0, 10)


def test_gather_windows_bounds_each_row_by_its_utterance():
    """Training's windows over a corpus tensor (rows bounded by their utterance) are the
    conversion windows of each utterance: one builder for both."""
    from vawgan.model import context_windows, gather_windows

    torch.manual_seed(0)
    lens = [4, 1, 6]
    x = torch.randn(sum(lens), 3)
    starts = torch.tensor([0, 4, 5])
    utt = torch.repeat_interleave(torch.arange(3), torch.tensor(lens))
    first = starts[utt]
    last = first + torch.tensor(lens)[utt] - 1
    rows = torch.arange(len(x))
    w = gather_windows(x, rows, first[rows], last[rows], 2)
    want = torch.cat([context_windows(x[s:s + n], 2) for s, n in zip(starts.tolist(), lens)])
    assert torch.equal(w, want)
    assert torch.equal(gather_windows(x, rows[:3], first[:3], last[:3], 0), x[:3])


def test_context_encoder_input_size():
    torch.manual_seed(0)
    m = build_model(cfg(context=2), n_speakers=3)
    assert m.encoder.net[0].in_features == 5 * 39
    assert m.decoder.net[0].in_features == 5 + 3  # the decoder stays frame-wise
    x = torch.randn(10, 39)
    mu, lv = m.encoder(torch.randn(10, 5 * 39))
    assert mu.shape == lv.shape == (10, 5)
    assert m.convert(x, torch.tensor(1)).shape == (10, 39)  # windows built inside
    assert m.critic(x[:, None, :], torch.zeros(10, dtype=torch.long)).shape == (10,)
    with pytest.raises(ConfigError, match="context"):
        cfg(context=-1)
    assert ModelConfig().context == 2  # the default chosen on VCC2016 dev


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_speaker_bias_is_optional_and_exact_at_zero(arch):
    """model.spk_bias (off by default: no parameter, the state dict unchanged): the same
    seed gives the same other weights; zero rows decode bit-identically to the model
    without it; a non-zero row moves only its own speaker, by the first layer's
    pre-activation."""
    kw = {"arch": arch, "context": 1}
    assert ModelConfig().spk_bias is False
    torch.manual_seed(0)
    plain = build_model(cfg(**kw), 3).eval()
    torch.manual_seed(0)
    biased = build_model(cfg(spk_bias=True, **kw), 3).eval()
    sd0, sd1 = plain.state_dict(), biased.state_dict()
    assert "decoder.spk_bias.weight" not in sd0 and plain.decoder.spk_bias is None
    assert set(sd1) - set(sd0) == {"decoder.spk_bias.weight"}
    assert sd1["decoder.spk_bias.weight"].shape == (3, 16)
    assert torch.all(sd1["decoder.spk_bias.weight"] == 0)
    for k, v in sd0.items():  # no random numbers drawn for the bias
        assert torch.equal(sd1[k], v), k
    x = torch.randn(20, 39)
    for t in range(3):
        assert torch.equal(plain.convert(x, torch.tensor(t)), biased.convert(x, torch.tensor(t)))
    with torch.no_grad():
        biased.decoder.spk_bias.weight[2] = torch.randn(16)
    for t in range(2):
        assert torch.equal(plain.convert(x, torch.tensor(t)), biased.convert(x, torch.tensor(t)))
    assert not torch.allclose(plain.convert(x, torch.tensor(2)), biased.convert(x, torch.tensor(2)))
    if arch == "mlp":  # the bias is the first layer's: the embedding's term moved into
        with torch.no_grad():  # it decodes the same
            ref = biased.convert(x, torch.tensor(2))
            cols = biased.decoder.net[0].weight[:, 5:8]  # input [z (5), e (3)]
            biased.decoder.spk_bias.weight[2] += cols @ biased.decoder.embed.weight[2]
            biased.decoder.embed.weight[2] = 0
        torch.testing.assert_close(biased.convert(x, torch.tensor(2)), ref)
    # training-time shapes: frame ids (N,), conv sequences (N, L) with one id each;
    # the gradient reaches the rows of the speakers in the batch only
    z = torch.randn(4, 6, 5) if arch == "conv" else torch.randn(4, 5)
    mean, _ = biased.decoder(z, torch.tensor([0, 0, 2, 2]))
    assert mean.shape == (*z.shape[:-1], 39)
    mean.square().sum().backward()
    g = biased.decoder.spk_bias.weight.grad
    assert g[0].abs().sum() > 0 and g[2].abs().sum() > 0 and torch.all(g[1] == 0)


def test_speaker_bias_config_checks():
    with pytest.raises(ConfigError, match="spk_bias"):
        Config.from_dict({"model": {"spk_bias": 1}})
    with pytest.raises(ConfigError, match="spk_bias"):
        ModelConfig(spk_bias="yes")
