"""Configuration: YAML files into dataclasses, strictly.

Every section is a dataclass; :func:`from_dict` rejects unknown keys and values of
the wrong type with a :class:`~vawgan.errors.ConfigError` naming the key, so a typo in
a recipe's YAML fails loudly instead of silently training with a default.

The resolved configuration (every default filled in) is written next to every
checkpoint and inside every model bundle, and read back at conversion time.

Examples
--------
>>> from vawgan.config import Config
>>> cfg = Config.from_dict({"feature": {"fs": 22050}})
>>> cfg.feature.fs, cfg.feature.resolved_fft_size()
(22050, 1024)
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

from .errors import ConfigError

#: largest ``train.batch_size`` accepted (frames per step; 256 is the default)
MAX_BATCH_SIZE = 65536

#: frequency-warping constants that pysptk.util.mcepalpha gives for the usual rates,
#: used to avoid importing pysptk for a lookup (checked against pysptk in the tests).
_ALPHA_TABLE = {8000: 0.312, 11025: 0.357, 16000: 0.41, 22050: 0.455, 24000: 0.466,
                32000: 0.504, 44100: 0.544, 48000: 0.554}


@dataclass
class FeatureConfig:
    """WORLD analysis and mel-cepstrum settings (one extraction path for everything)."""

    fs: int = 16000  #: working sample rate; input audio is resampled to it
    frame_period: float = 5.0  #: frame shift in ms
    f0_method: str = "harvest"  #: "harvest" or "dio" (DIO + StoneMask)
    f0_floor: float = 50.0  #: global f0 search floor (Hz); speakers may override
    f0_ceil: float = 500.0  #: global f0 search ceiling (Hz); speakers may override
    mcep_order: int = 39  #: mel-cepstrum order: c0..c39, c0 kept as energy
    mcep_alpha: Optional[float] = None  #: all-pass constant; None = from fs
    fft_size: Optional[int] = None  #: CheapTrick FFT size; None = from fs
    silence_db: float = -20.0  #: frames whose power is this far below the mean are silent
    min_frames: int = 10  #: shorter inputs are rejected

    def __post_init__(self):
        if self.fs < 8000 or self.fs > 96000:
            raise ConfigError(f"feature.fs={self.fs}: must be between 8000 and 96000 Hz")
        if not 1.0 <= self.frame_period <= 20.0:
            raise ConfigError(f"feature.frame_period={self.frame_period}: must be 1..20 ms")
        if self.f0_method not in ("harvest", "dio"):
            raise ConfigError(f"feature.f0_method={self.f0_method!r}: use 'harvest' or 'dio'")
        if not 0 < self.f0_floor < self.f0_ceil:
            raise ConfigError(
                f"feature.f0_floor={self.f0_floor}, f0_ceil={self.f0_ceil}: need 0 < floor < ceil")
        if self.mcep_order < 1:
            raise ConfigError(f"feature.mcep_order={self.mcep_order}: must be >= 1")
        if self.mcep_alpha is not None and not -1 < self.mcep_alpha < 1:
            raise ConfigError(f"feature.mcep_alpha={self.mcep_alpha}: must be in (-1, 1)")
        if self.fft_size is not None and (self.fft_size & (self.fft_size - 1) or self.fft_size < 256):
            raise ConfigError(f"feature.fft_size={self.fft_size}: must be a power of two >= 256")

    def resolved_alpha(self) -> float:
        """All-pass constant: the configured one, else pysptk.util.mcepalpha(fs)."""
        if self.mcep_alpha is not None:
            return float(self.mcep_alpha)
        if self.fs in _ALPHA_TABLE:
            return _ALPHA_TABLE[self.fs]
        import pysptk

        return float(pysptk.util.mcepalpha(self.fs))

    def resolved_fft_size(self) -> int:
        """CheapTrick FFT size: the configured one, else 1024 up to 24 kHz, 2048 above.

        This is ``pyworld.get_cheaptrick_fft_size(fs, 71)``, fixed per sample rate
        (not per speaker f0 floor) so that every speaker's envelope has the same size.
        """
        if self.fft_size is not None:
            return int(self.fft_size)
        n = 1
        while n < 3.0 * self.fs / 71.0 + 1:
            n *= 2
        return n

    def for_speaker(self, f0_floor: Optional[float] = None,
                    f0_ceil: Optional[float] = None) -> "FeatureConfig":
        """A copy with a speaker's f0 range (None keeps the global value)."""
        return dataclasses.replace(
            self,
            f0_floor=self.f0_floor if f0_floor is None else float(f0_floor),
            f0_ceil=self.f0_ceil if f0_ceil is None else float(f0_ceil),
        )


VCC2016_SOURCES = ["SF1", "SF2", "SF3", "SM1", "SM2"]
VCC2016_TARGETS = ["TF1", "TF2", "TM1", "TM2", "TM3"]


@dataclass
class DataConfig:
    """Which speakers and sentences a recipe uses (``recipes/*/local/data_prep.py``)."""

    sources: List[str] = field(default_factory=lambda: list(VCC2016_SOURCES))  #: source speakers
    targets: List[str] = field(default_factory=lambda: list(VCC2016_TARGETS))  #: target speakers
    dev_utts: str = "100151-100162"  #: held-out sentence ids (range "a-b" or comma list)
    max_train_utts: Optional[int] = None  #: cap on training sentences per speaker (None = all)
    max_dev_utts: Optional[int] = None  #: cap on dev sentences per speaker (None = all)
    pairs: Optional[List[str]] = None  #: "SRC-TGT" pairs to convert; None = every source x target

    def __post_init__(self):
        if not self.sources or not self.targets:
            raise ConfigError("data.sources and data.targets must not be empty")
        for p in self.pairs or []:
            if p.count("-") != 1:
                raise ConfigError(f"data.pairs: {p!r} is not of the form SRC-TGT")

    def speakers(self) -> List[str]:
        """Every speaker, sources first, without repeats."""
        return list(dict.fromkeys(self.sources + self.targets))

    def conversion_pairs(self) -> List[tuple]:
        if self.pairs:
            return [tuple(p.split("-")) for p in self.pairs]
        return [(s, t) for s in self.sources for t in self.targets if s != t]


@dataclass
class ExtractConfig:
    """Corpus extraction (``vawgan extract``)."""

    jobs: int = 1  #: parallel workers (joblib); -1 = all cores
    scheduler: Optional[str] = None  #: Dask scheduler address (tcp://host:port); None = local


@dataclass
class StatsConfig:
    """Per-speaker statistics (``vawgan stats``)."""

    ms_fft: int = 256  #: modulation-spectrum FFT length in frames (256 x 5 ms = 1.28 s)
    #: utterances per speaker resynthesized through WORLD and analysed again to measure
    #: how the vocoder changes the speaker's GV (``gv_resynth_ratio``): the GV postfilter
    #: aims at the features' GV that synthesis turns into the speaker's. 0 = not measured
    #: (the postfilter aims at the natural GV itself)
    resynth_utts: int = 10

    def __post_init__(self):
        if self.ms_fft < 2:
            raise ConfigError(f"stats.ms_fft={self.ms_fft}: must be an FFT length >= 2 frames")
        if self.resynth_utts < 0:
            raise ConfigError(f"stats.resynth_utts={self.resynth_utts}: must be >= 0")


@dataclass
class ModelConfig:
    """Network architecture (see :mod:`vawgan.model`)."""

    #: encoder/decoder architecture: "mlp" (frame-wise layers; the encoder's input is a
    #: window of +-context frames) or "conv" (temporal: every layer of the encoder and
    #: decoder sees +-(gen_kernel // 2) neighbouring frames of the layer below, the
    #: encoder's first layer +-context; trained on segments of ``segment`` frames)
    arch: str = "mlp"
    #: frames of context on each side fed to the encoder (input t-k..t+k of the same
    #: utterance, edge frames replicated); 0 = frame-wise, the baseline. The decoder
    #: and the critics stay as they are. Default 2: on VCC2016 dev it lowered MCD by
    #: 0.06 dB (VAE) and 0.1 dB (VAW-GAN, with or without GV postfilter) against 0
    #: (docs/results.md, "Model selection").
    context: int = 2
    critic_arch: str = "mlp"  #: "mlp" (frame-wise) or "conv" (1-D conv over segments)
    z_dim: int = 32  #: latent dimensions
    hidden: int = 256  #: hidden units per layer (encoder and decoder)
    n_layers: int = 3  #: hidden layers (encoder and decoder)
    spk_dim: int = 16  #: speaker embedding size (decoder and critic have their own)
    critic_hidden: int = 256  #: hidden units (or channels) of the critic
    critic_layers: int = 3  #: hidden layers of the critic
    segment: int = 32  #: frames per segment for the conv critic (ignored by "mlp")
    conv_kernel: int = 5  #: temporal kernel size of the conv critic (odd)
    gen_kernel: int = 3  #: temporal kernel of the encoder/decoder layers with arch "conv" (odd)
    #: decoder output variance: "unit" (fixed 1), "learned" (one learned log-variance
    #: per dim) or "frame" (a per-frame, per-dim log-variance head)
    decoder_variance: str = "learned"
    min_logvar: float = -7.0  #: lower bound of the decoder log-variance (avoids collapse)
    leaky_slope: float = 0.2  #: negative slope of the LeakyReLU activations
    #: a learned per-speaker bias on the decoder's first hidden layer (``hidden`` values
    #: per speaker, zeros at the start), added to what the speaker embedding gives: off
    #: in training; ``vawgan enroll --adapt bias`` turns it on in the bundle it writes
    #: (the base speakers' rows stay zero, so they convert exactly as before) and learns
    #: the new speaker's row together with its embedding row
    spk_bias: bool = False

    def __post_init__(self):
        if self.arch not in ("mlp", "conv"):
            raise ConfigError(f"model.arch={self.arch!r}: use 'mlp' or 'conv'")
        if self.critic_arch not in ("mlp", "conv"):
            raise ConfigError(f"model.critic_arch={self.critic_arch!r}: use 'mlp' or 'conv'")
        if self.decoder_variance not in ("unit", "learned", "frame"):
            raise ConfigError(f"model.decoder_variance={self.decoder_variance!r}: "
                              "use 'unit', 'learned' or 'frame'")
        for name in ("z_dim", "hidden", "n_layers", "spk_dim", "critic_hidden",
                     "critic_layers", "segment", "conv_kernel", "gen_kernel"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name}={getattr(self, name)}: must be >= 1")
        if self.context < 0:
            raise ConfigError(f"model.context={self.context}: must be >= 0")
        for name in ("conv_kernel", "gen_kernel"):
            if getattr(self, name) % 2 == 0:
                raise ConfigError(f"model.{name}={getattr(self, name)}: must be odd")
        if not isinstance(self.spk_bias, bool):
            raise ConfigError(f"model.spk_bias={self.spk_bias!r}: use true or false")
        if not 0.0 <= self.leaky_slope < 1.0:
            raise ConfigError(f"model.leaky_slope={self.leaky_slope}: must be in [0, 1)")

    #: the keys that shape only the critic; every other key defines the encoder/decoder
    CRITIC_KEYS = ("critic_arch", "critic_hidden", "critic_layers", "segment", "conv_kernel")

    def generator_settings(self) -> Dict[str, Any]:
        """The settings of the encoder and decoder: every field but :attr:`CRITIC_KEYS`."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in self.CRITIC_KEYS}

    def encoder_inputs(self, n_dims: int) -> int:
        """Encoder input size (per frame, first layer): ``(2 * context + 1) * n_dims``."""
        return (2 * self.context + 1) * n_dims

    def unit_length(self) -> int:
        """Frames per critic input (and per training segment with arch "conv"):
        ``segment`` for the conv critic or the conv encoder/decoder, else 1."""
        return self.segment if "conv" in (self.critic_arch, self.arch) else 1

    def receptive_radius(self) -> int:
        """Frames on each side of a frame that its conversion depends on: ``context``
        (MLP), plus ``gen_kernel // 2`` per encoder and decoder layer (conv)."""
        extra = 2 * (self.n_layers + 1) * (self.gen_kernel // 2) if self.arch == "conv" else 0
        return self.context + extra

    def sampler_context(self) -> int:
        """Context frames of the windows the sampler builds: ``context`` for the MLP
        encoder; 0 for arch "conv", whose windows are built inside the network."""
        return self.context if self.arch == "mlp" else 0


@dataclass
class TrainConfig:
    """Training schedule (see :mod:`vawgan.train`).

    The default lengths fit the full VCC2016 training set (10 speakers, ~0.8 M
    non-silent frames) into about an hour on 2 CPU cores; see ``benchmarks/bench_train.py``.
    """

    batch_size: int = 256  #: frames per step (conv critic: batch_size // segment segments)
    vae_steps: int = 40000  #: phase 1: VAE pre-training steps (encoder + decoder), ~13 epochs
    critic_steps: int = 1000  #: phase 2: critic warm-up steps (VAE frozen)
    gan_steps: int = 12000  #: phase 3: adversarial generator steps
    n_critic: int = 5  #: critic steps per generator step in phase 3
    lr_enc: float = 1e-3  #: encoder learning rate (Adam)
    lr_dec: float = 1e-3  #: decoder learning rate (Adam), incl. speaker embedding and variance
    lr_critic: float = 1e-4  #: critic learning rate (Adam)
    lr_gan_scale: float = 0.1  #: encoder/decoder learning rates are multiplied by this in phase 3
    critic_betas: str = "0.5,0.9"  #: Adam betas "b1,b2" of the critic (WGAN-GP uses a low b1)
    kl_weight: float = 1.0  #: weight of KL(q(z|x) || N(0, I))
    gp_lambda: float = 10.0  #: gradient-penalty weight
    #: fraction of each critic batch whose interpolates the gradient penalty is taken
    #: over (0 < f <= 1; at least one item): the penalty is an expectation over
    #: interpolates, so a part of the batch is an unbiased, noisier estimate of it, for
    #: fewer multiply-adds (the input-gradient and its double backward are the larger
    #: half of a critic step). 1 = every item, the WGAN-GP of Gulrajani et al.
    #: 0.25 by default: on VCC2016 dev the same quality as 1 (feature level, + GV
    #: postfilter 6.947 vs 6.953 dB) with phase-3 steps 1.19x faster (bf16, 1 thread)
    gp_fraction: float = 0.25
    #: weight of the adversarial term (multiplies the adaptive ratio too). 0.3 by
    #: default: with the speaker-adversarial weight 10 the adversarial phase at 1 cost
    #: 1 dB MCD; at 0.3 it stays within +0.01 dB of its VAE (docs/results.md)
    adv_weight: float = 0.3
    #: "fixed" (default: predictable, reproducible) or "adaptive" (adv_weight times the
    #: ratio |reconstruction| / |adversarial| of running loss magnitudes)
    adv_balance: str = "fixed"
    adv_balance_every: int = 100  #: steps between re-estimates of the adaptive ratio
    log_every: int = 100  #: steps between log lines (tqdm, TensorBoard, history.jsonl)
    ckpt_every: int = 1000  #: steps between checkpoints
    seed: int = 0  #: random seed (weights, batches, noise)
    device: str = "auto"  #: "auto" (CUDA when available), "cpu" or "cuda"
    #: CPU threads for torch; 0 = auto: max(1, min(4, cores // 2)): on a small shared
    #: machine one thread avoids OpenMP spin contention (5x faster under load on 2 cores)
    threads: int = 0
    cuda_graph: bool = True  #: on CUDA, capture whole training steps in CUDA graphs
    #: matrix-product precision: "fp32", "bf16" (autocast; parameters, Adam states and
    #: losses stay float32) or "auto" (bf16 where the CPU/GPU multiplies bf16 natively,
    #: from the CPU flags AVX512-BF16/AMX-BF16 (:mod:`vawgan.precision`): ~2x faster
    #: steps there, ~2x slower where bf16 is only emulated, e.g. Ice Lake)
    precision: str = "auto"
    #: what the adversarial branch (and the critic's fakes) decode: "mean", the
    #: posterior mean, which is what conversion decodes (default), or "sample",
    #: z ~ q(z|x) (vawgan 0.1). The encoder is detached either way.
    adv_input: str = "mean"
    #: per-dim weights of the reconstruction NLL: "uniform" (every z-scored dim alike)
    #: or "mcd" (c1..c24 weighted up by their mean squared natural scale across the
    #: training speakers, toward what MCD measures; the weights average 1 over dims)
    rec_weight: str = "uniform"
    #: encoder/decoder learning rates in phase 1: "constant", or "cosine": a half
    #: cosine from lr_enc / lr_dec down to the phase-3 rate (lr * lr_gan_scale)
    lr_schedule: str = "constant"
    #: weight of the speaker-adversarial term on the latent code: a classifier learns
    #: the speaker from the posterior mean while the encoder is pushed toward a uniform
    #: prediction (less speaker information in z); 0 = off. Default 10: on VCC2016 dev
    #: 3 lowered MCD by 0.13 dB (VAW-GAN) against 0, 10 by another 0.12 dB (VAE; with
    #: the GV postfilter); 30 collapses the posterior (docs/results.md, "Quality work")
    spk_adv_weight: float = 10.0
    #: weight of the cycle-consistency term (CycleVAE, Tobing et al. 2019): each step,
    #: ``batch_size // 4`` frames (or segments) are converted to random other speakers
    #: with sampled z, the conversion is encoded again and decoded with the frame's own
    #: speaker; its NLL of the original frame is added with this weight, so that the
    #: encoder and the decoder are trained on converted speech too, not only on
    #: reconstruction. 0 = off
    cyc_weight: float = 0.0

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"train.{f.name}={v}: must be a finite number")
        if self.batch_size > MAX_BATCH_SIZE:
            raise ConfigError(f"train.batch_size={self.batch_size}: at most {MAX_BATCH_SIZE} "
                              "frames per step")
        for name in ("batch_size", "n_critic", "log_every", "ckpt_every", "adv_balance_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name}={getattr(self, name)}: must be >= 1")
        for name in ("vae_steps", "critic_steps", "gan_steps", "threads"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name}={getattr(self, name)}: must be >= 0")
        for name in ("lr_enc", "lr_dec", "lr_critic", "lr_gan_scale"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"train.{name}={getattr(self, name)}: must be > 0")
        for name in ("kl_weight", "gp_lambda", "adv_weight", "spk_adv_weight", "cyc_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name}={getattr(self, name)}: must be >= 0")
        if not 0 < self.gp_fraction <= 1:
            raise ConfigError(f"train.gp_fraction={self.gp_fraction}: must be in (0, 1]")
        if self.adv_balance not in ("fixed", "adaptive"):
            raise ConfigError(f"train.adv_balance={self.adv_balance!r}: use 'fixed' or 'adaptive'")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"train.device={self.device!r}: use 'auto', 'cpu' or 'cuda'")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"train.precision={self.precision!r}: use 'auto', 'fp32' or 'bf16'")
        if self.adv_input not in ("mean", "sample"):
            raise ConfigError(f"train.adv_input={self.adv_input!r}: use 'mean' or 'sample'")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ConfigError(f"train.lr_schedule={self.lr_schedule!r}: use 'constant' or 'cosine'")
        if self.rec_weight not in ("uniform", "mcd"):
            raise ConfigError(f"train.rec_weight={self.rec_weight!r}: use 'uniform' or 'mcd'")
        self.critic_betas_pair()

    def critic_betas_pair(self):
        """``critic_betas`` as a pair of floats in [0, 1)."""
        try:
            b = tuple(float(v) for v in self.critic_betas.split(","))
        except ValueError:
            b = ()
        if len(b) != 2 or not all(0.0 <= v < 1.0 for v in b):
            raise ConfigError(f"train.critic_betas={self.critic_betas!r}: expected 'b1,b2' in [0, 1)")
        return b


@dataclass
class Config:
    """The whole configuration: one YAML file with these sections."""

    data: DataConfig = field(default_factory=DataConfig)
    feature: FeatureConfig = field(default_factory=FeatureConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    stats: StatsConfig = field(default_factory=StatsConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def from_dict(cls, d: Optional[Dict[str, Any]]) -> "Config":
        return from_dict(cls, d or {}, "")

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)



def _check_type(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Union:  # Optional[X]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _check_type(value, args[0], where)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return from_dict(tp, value, where)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if origin in (list, List):
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(tp) or (Any,)
        return [_check_type(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def from_dict(cls, d: Dict[str, Any], where: str = ""):
    """Build dataclass ``cls`` from mapping ``d``; unknown keys raise ConfigError."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"unknown config key {prefix}{unknown[0]} (allowed in {where or 'top level'}: "
            f"{', '.join(sorted(names))})")
    kwargs = {}
    for k, v in d.items():
        kwargs[k] = _check_type(v, hints[k], f"{where}.{k}" if where else k)
    try:
        return cls(**kwargs)
    except TypeError as e:  # pragma: no cover - defensive
        raise ConfigError(f"{where or 'config'}: {e}") from None


def load_config(path: Optional[os.PathLike | str]) -> Config:
    """Read a YAML config strictly; ``None`` gives the defaults."""
    if path is None:
        return Config()
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as e:
        msg = str(e).replace("\n", " ")
        raise ConfigError(f"{path}: not valid YAML ({msg})") from None
    try:
        return Config.from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def save_config(cfg: Config, path: os.PathLike | str) -> None:
    """Write the resolved config as YAML, atomically."""
    from .io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
