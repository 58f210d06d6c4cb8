"""The networks of the speaker-conditioned VAE-WGAN (VAW-GAN, Hsu et al. 2017).

* :class:`Encoder`: per-speaker z-scored mel-cepstrum c1..c39 of one frame ->
  mean and log-variance of the Gaussian posterior q(z|x). It sees no speaker id, so
  the latent code is pushed towards speaker-independent (phonetic) content. With
  ``model.context = k > 0`` its input for frame t is the window of frames t-k..t+k of
  the same utterance (edge frames replicated, see :func:`context_windows`), i.e.
  ``(2k+1) * 39`` values; the decoder stays frame-wise.
* :class:`Decoder` (the generator): latent z + target-speaker embedding -> c1..c39 in
  normalized units, with a log-variance that is fixed (``"unit"``), learned per dim
  (``"learned"``, the default) or predicted per frame (``"frame"``). With
  ``model.spk_bias`` it also holds a per-speaker bias of its first hidden layer (the
  extra room ``vawgan enroll --adapt bias`` gives a new speaker).
* Critics, conditioned on the speaker: :class:`FrameCritic` (an MLP scoring single
  frames) and :class:`ConvCritic` (a 1-D convolution over segments of
  ``model.segment`` frames, so it can judge trajectories and hence the modulation
  spectrum). Neither uses batch normalization, which would break the per-sample
  gradient penalty.

Every critic takes ``x`` of shape (N, L, D) (L = 1 for frames) and speaker ids (N,)
and returns (N,) scores, so the training code is the same for both.

References
----------
C.-C. Hsu, H.-T. Hwang, Y.-C. Wu, Y. Tsao, H.-M. Wang, "Voice conversion from
unaligned corpora using variational autoencoding Wasserstein generative adversarial
networks", Interspeech 2017.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import nn

from .config import ModelConfig

#: number of converted dims: c1..c39
N_DIMS = 39

#: state-dict keys of the per-speaker tables (row i = speaker id i); a model with more or
#: fewer speakers differs from another only in these (``decoder.spk_bias.weight`` exists
#: only with ``model.spk_bias``)
SPEAKER_TABLES = ("decoder.embed.weight", "decoder.spk_bias.weight", "critic.embed.weight")


def _mlp(n_in: int, hidden: int, n_layers: int, n_out: int, slope: float,
         out_bias: bool = True) -> nn.Sequential:
    layers = []
    d = n_in
    for _ in range(n_layers):
        layers += [nn.Linear(d, hidden), nn.LeakyReLU(slope)]
        d = hidden
    layers.append(nn.Linear(d, n_out, bias=out_bias))
    return nn.Sequential(*layers)


def gather_windows(frames: torch.Tensor, rows: torch.Tensor, first: torch.Tensor,
                   last: torch.Tensor, context: int) -> torch.Tensor:
    """Encoder inputs: for each row r, frames r-k..r+k concatenated, clamped to [first, last].

    The one builder of context windows, used by training (:class:`vawgan.data.Sampler`,
    rows of the corpus tensor bounded by their utterance) and by conversion
    (:func:`context_windows`, one utterance), and exported to ONNX with the model.

    Parameters
    ----------
    frames : Tensor, shape (N, D)
    rows : LongTensor, shape (...)
        Centre frames.
    first, last : LongTensor, shape (...) or ()
        Inclusive bounds of each row's utterance (edge frames are replicated).
    context : int
        k, frames on each side; 0 returns ``frames[rows]``.

    Returns
    -------
    Tensor, shape (..., (2k+1) * D)
    """
    if context == 0:
        return frames[rows]
    r = rows[..., None] + torch.arange(-context, context + 1, device=rows.device)
    r = torch.minimum(torch.maximum(r, first[..., None]), last[..., None])
    return frames[r].flatten(-2)


def context_windows(x: torch.Tensor, context: int) -> torch.Tensor:
    """Encoder inputs of one utterance: frames t-k..t+k of each frame t, concatenated.

    Indices are clamped to the first/last frame (edge replication). ``context == 0``
    returns ``x`` itself. See :func:`gather_windows`.

    Parameters
    ----------
    x : Tensor, shape (T, D)
    context : int
        k, frames on each side.

    Returns
    -------
    Tensor, shape (T, (2k+1) * D)
    """
    if context == 0:
        return x
    rows = torch.arange(x.shape[0], device=x.device)
    return gather_windows(x, rows, rows[:1], rows[-1:], context)


def sequence_windows(h: torch.Tensor, radius: int) -> torch.Tensor:
    """Frames t-r..t+r of each frame t of each sequence, concatenated (edges replicated).

    The temporal layers of arch "conv" (:class:`TemporalMLP`) use it; for one
    utterance with ``radius = context`` it equals :func:`context_windows`.

    Parameters
    ----------
    h : Tensor, shape (N, L, C)
    radius : int
        r >= 0; 0 returns ``h``.

    Returns
    -------
    Tensor, shape (N, L, (2r+1) C)
    """
    if radius == 0:
        return h
    n = h.shape[1]
    idx = torch.arange(-radius, n + radius, device=h.device).clamp(0, n - 1)
    hp = h[:, idx]
    return torch.cat([hp[:, j:j + n] for j in range(2 * radius + 1)], dim=-1)


class TemporalMLP(nn.Module):
    """An MLP over sequences whose every hidden layer sees neighbouring frames.

    Layer i maps the window of +-``radii[i]`` frames of the layer below
    (:func:`sequence_windows`, edges replicated) through a linear map and a LeakyReLU:
    a 1-D convolution of kernel ``2 r + 1``, written as a gather and one matrix product
    (faster than ``nn.Conv1d`` for these sizes on a CPU, and the same in ONNX). The
    output layer is frame-wise. The receptive field is ``+-sum(radii)`` frames.

    Parameters
    ----------
    n_in, hidden, n_out : int
    radii : sequence of int
        One per hidden layer.
    slope : float
    """

    def __init__(self, n_in: int, hidden: int, n_out: int, radii, slope: float):
        super().__init__()
        self.radii = [int(r) for r in radii]
        layers = []
        d = n_in
        for r in self.radii:
            layers.append(nn.Linear((2 * r + 1) * d, hidden))
            d = hidden
        self.layers = nn.ModuleList(layers)
        self.act = nn.LeakyReLU(slope)
        self.out = nn.Linear(d, n_out)

    def forward(self, x: torch.Tensor, first_bias: Optional[torch.Tensor] = None) -> torch.Tensor:
        """
        Parameters
        ----------
        x : Tensor, shape (N, L, n_in)
        first_bias : Tensor, shape (N, 1, hidden), optional
            Added to the first layer's pre-activation (a per-sequence bias).

        Returns
        -------
        Tensor, shape (N, L, n_out)
        """
        h = x
        for i, (r, lin) in enumerate(zip(self.radii, self.layers)):
            a = lin(sequence_windows(h, r))
            if i == 0 and first_bias is not None:
                a = a + first_bias
            h = self.act(a)
        return self.out(h)


class ConvEncoder(nn.Module):
    """q(z|x) over sequences (arch "conv"): a :class:`TemporalMLP` of radii
    ``context, r, r, ...`` (r = ``gen_kernel // 2``).

    Parameters
    ----------
    cfg : ModelConfig
    n_dims : int
    """

    def __init__(self, cfg: ModelConfig, n_dims: int = N_DIMS):
        super().__init__()
        self.z_dim = cfg.z_dim
        r = cfg.gen_kernel // 2
        self.net = TemporalMLP(n_dims, cfg.hidden, 2 * cfg.z_dim,
                               [cfg.context] + [r] * (cfg.n_layers - 1), cfg.leaky_slope)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Parameters
        ----------
        x : Tensor, shape (N, L, n_dims)
            Sequences of normalized frames.

        Returns
        -------
        mu, logvar : Tensor, shape (N, L, z_dim)
        """
        h = self.net(x)
        return h[..., :self.z_dim], h[..., self.z_dim:]


class Encoder(nn.Module):
    """q(z|x): a frame MLP returning the posterior mean and log-variance.

    Parameters
    ----------
    cfg : ModelConfig
    n_dims : int
        Dims per frame (39); the input has ``(2 * cfg.context + 1) * n_dims``.
    """

    def __init__(self, cfg: ModelConfig, n_dims: int = N_DIMS):
        super().__init__()
        self.z_dim = cfg.z_dim
        self.context = cfg.context
        self.n_in = cfg.encoder_inputs(n_dims)
        self.net = _mlp(self.n_in, cfg.hidden, cfg.n_layers, 2 * cfg.z_dim, cfg.leaky_slope)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Parameters
        ----------
        x : Tensor, shape (..., (2 * context + 1) * n_dims)
            A frame, or with context its window (frames t-k..t+k concatenated).

        Returns
        -------
        mu, logvar : Tensor, shape (..., z_dim)
        """
        h = self.net(x)
        return h[..., :self.z_dim], h[..., self.z_dim:]


class Decoder(nn.Module):
    """p(x|z, s): the generator. Holds the speaker embedding and the output variance.

    With ``cfg.spk_bias`` the first hidden layer's pre-activation gets a per-speaker bias
    ``spk_bias.weight[s]`` (shape (hidden,), an :class:`~torch.nn.Embedding` whose rows
    start at zero): ``W [z, e_s] + b + B_s``. The embedding alone moves that
    pre-activation only within the ``spk_dim``-dimensional span of its weight columns;
    the bias moves it anywhere. A speaker whose bias row is zero decodes exactly as
    without it (adding zeros is exact), and no random numbers are drawn for it, so the
    other weights initialize as without it.

    Parameters
    ----------
    cfg : ModelConfig
    n_speakers : int
    n_dims : int
    """

    def __init__(self, cfg: ModelConfig, n_speakers: int, n_dims: int = N_DIMS):
        super().__init__()
        if n_speakers < 1:
            raise ValueError(f"Decoder: n_speakers={n_speakers} must be >= 1")
        self.n_dims = n_dims
        self.variance = cfg.decoder_variance
        self.min_logvar = cfg.min_logvar
        self.embed = nn.Embedding(n_speakers, cfg.spk_dim)
        n_out = 2 * n_dims if self.variance == "frame" else n_dims
        self.temporal = cfg.arch == "conv"
        if self.temporal:
            self.net = TemporalMLP(cfg.z_dim + cfg.spk_dim, cfg.hidden, n_out,
                                   [cfg.gen_kernel // 2] * cfg.n_layers, cfg.leaky_slope)
        else:
            self.net = _mlp(cfg.z_dim + cfg.spk_dim, cfg.hidden, cfg.n_layers, n_out,
                            cfg.leaky_slope)
        if self.variance == "learned":
            self.logvar = nn.Parameter(torch.zeros(n_dims))
        else:
            self.register_parameter("logvar", None)
        if cfg.spk_bias:
            self.spk_bias = nn.Embedding(n_speakers, cfg.hidden,
                                         _weight=torch.zeros(n_speakers, cfg.hidden))
        else:
            self.spk_bias = None

    def forward(self, z: torch.Tensor, spk: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Parameters
        ----------
        z : Tensor, shape (..., z_dim); with arch "conv" (N, L, z_dim) sequences
        spk : LongTensor, shape (...)
            Target speaker ids (same leading shape as ``z``); with arch "conv" one per
            sequence, shape (N,).

        Returns
        -------
        mean : Tensor, shape (..., n_dims)
            Normalized c1..c39.
        logvar : Tensor, shape (..., n_dims) or (n_dims,)
            Output log-variance, bounded below by ``min_logvar`` (softly); zeros of
            shape (n_dims,) for ``"unit"``; broadcastable against ``mean``.
        """
        e = self.embed(spk)
        if self.temporal:
            e = e[:, None, :].expand(-1, z.shape[1], -1)
        inp = torch.cat([z, e], dim=-1)
        if self.spk_bias is None:
            h = self.net(inp)
        elif self.temporal:
            h = self.net(inp, first_bias=self.spk_bias(spk)[:, None, :])
        else:
            h = self.net[1:](self.net[0](inp) + self.spk_bias(spk))
        if self.variance == "frame":
            mean, lv = h[..., :self.n_dims], h[..., self.n_dims:]
        elif self.variance == "learned":
            mean, lv = h, self.logvar
        else:
            return h, h.new_zeros(self.n_dims)
        lv = self.min_logvar + nn.functional.softplus(lv - self.min_logvar)
        return mean, lv


class FrameCritic(nn.Module):
    """D(x, s) on single frames: MLP over [x, e_s] -> scalar.

    Parameters
    ----------
    cfg : ModelConfig
    n_speakers : int
    n_dims : int
    """

    def __init__(self, cfg: ModelConfig, n_speakers: int, n_dims: int = N_DIMS):
        super().__init__()
        self.embed = nn.Embedding(n_speakers, cfg.spk_dim)
        # no output bias: it cancels in D(real) - D(fake) and in grad_x D, so it would
        # never be trained
        self.net = _mlp(n_dims + cfg.spk_dim, cfg.critic_hidden, cfg.critic_layers, 1,
                        cfg.leaky_slope, out_bias=False)

    def forward(self, x: torch.Tensor, spk: torch.Tensor) -> torch.Tensor:
        """
        Parameters
        ----------
        x : Tensor, shape (N, L, n_dims) or (N, n_dims)
            L frames per item, scored independently and averaged.
        spk : LongTensor, shape (N,)

        Returns
        -------
        Tensor, shape (N,)
        """
        e = self.embed(spk)
        if x.dim() == 3:
            e = e[:, None, :].expand(-1, x.shape[1], -1)
            return self.net(torch.cat([x, e], dim=-1))[..., 0].mean(dim=1)
        return self.net(torch.cat([x, e], dim=-1))[:, 0]


class ConvCritic(nn.Module):
    """D(x, s) on segments: 1-D convolutions over time, then a mean over time.

    Input channels are the 39 dims plus the speaker embedding repeated over time;
    ``critic_layers`` convolutions of ``critic_hidden`` channels, kernel
    ``conv_kernel``, 'same' padding, LeakyReLU; a 1x1 convolution to one channel;
    the score is its mean over the segment.

    Parameters
    ----------
    cfg : ModelConfig
    n_speakers : int
    n_dims : int
    """

    def __init__(self, cfg: ModelConfig, n_speakers: int, n_dims: int = N_DIMS):
        super().__init__()
        self.embed = nn.Embedding(n_speakers, cfg.spk_dim)
        layers = []
        c = n_dims + cfg.spk_dim
        for _ in range(cfg.critic_layers):
            layers += [nn.Conv1d(c, cfg.critic_hidden, cfg.conv_kernel, padding=cfg.conv_kernel // 2),
                       nn.LeakyReLU(cfg.leaky_slope)]
            c = cfg.critic_hidden
        layers.append(nn.Conv1d(c, 1, 1, bias=False))  # bias would never be trained
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, spk: torch.Tensor) -> torch.Tensor:
        """
        Parameters
        ----------
        x : Tensor, shape (N, L, n_dims)
        spk : LongTensor, shape (N,)

        Returns
        -------
        Tensor, shape (N,)
        """
        if x.dim() != 3:
            raise ValueError(f"ConvCritic: expected (N, L, D) segments, got shape {tuple(x.shape)}")
        e = self.embed(spk)[:, :, None].expand(-1, -1, x.shape[1])
        h = torch.cat([x.transpose(1, 2), e], dim=1)
        return self.net(h)[:, 0, :].mean(dim=1)


class VAWGAN(nn.Module):
    """Encoder, decoder and critic together (one state_dict for checkpoints and bundles).

    Parameters
    ----------
    cfg : ModelConfig
    n_speakers : int
    n_dims : int
    """

    def __init__(self, cfg: ModelConfig, n_speakers: int, n_dims: int = N_DIMS):
        super().__init__()
        if n_speakers < 1:
            raise ValueError(f"VAWGAN: n_speakers={n_speakers} must be >= 1")
        self.cfg = cfg
        self.n_speakers = n_speakers
        self.n_dims = n_dims
        self.encoder = ConvEncoder(cfg, n_dims) if cfg.arch == "conv" else Encoder(cfg, n_dims)
        self.decoder = Decoder(cfg, n_speakers, n_dims)
        critic_cls = ConvCritic if cfg.critic_arch == "conv" else FrameCritic
        self.critic = critic_cls(cfg, n_speakers, n_dims)

    @torch.no_grad()
    def convert(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Normalized frames -> normalized frames of the target speaker(s).

        Encodes with the posterior mean (no sampling) and returns the decoder mean.
        ``x`` is one utterance: with ``context > 0`` its windows are built here
        (:func:`context_windows`); arch "conv" runs over it as one sequence.

        Parameters
        ----------
        x : Tensor, shape (T, n_dims)
        target : LongTensor, shape () or (T,)
            With arch "conv", one target for the utterance (shape () or (1,)).

        Returns
        -------
        Tensor, shape (T, n_dims)
        """
        if self.cfg.arch == "conv":
            mu, _ = self.encoder(x[None])
            return self.decoder(mu, target.reshape(-1)[:1])[0][0]
        mu, _ = self.encoder(context_windows(x, self.cfg.context))
        if target.dim() == 0:
            target = target.expand(x.shape[0])
        return self.decoder(mu, target)[0]


class ConversionGraph(nn.Module):
    """What conversion runs, as one graph for :mod:`vawgan.export` (ONNX).

    ``forward(x, target)`` is :meth:`VAWGAN.convert`: normalized source frames of one
    utterance (T, n_dims) and a target speaker id (a 0-d LongTensor) -> the decoder
    mean of the posterior mean (T, n_dims), context windows included.

    Parameters
    ----------
    model : VAWGAN
    """

    def __init__(self, model: VAWGAN):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.model.convert(x, target)


def build_model(cfg: ModelConfig, n_speakers: int, n_dims: int = N_DIMS) -> VAWGAN:
    """The model of a configuration (see :class:`VAWGAN`)."""
    return VAWGAN(cfg, n_speakers, n_dims)
