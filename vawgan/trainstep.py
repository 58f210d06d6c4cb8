"""One training step of each phase of the VAW-GAN schedule (the math; no I/O).

:class:`StepRunner` owns the model, the three Adam optimizers (encoder; decoder with
speaker embedding and output variance; critic), the batch sampler and the adaptive
adversarial weight. Its ``vae_step`` / ``critic_step`` / ``gan_step`` return
dictionaries of *detached tensors* (no host synchronisation per step); the caller
accumulates them and converts to numbers once per log interval.

Phases
------
1. VAE pre-training: ``rec + kl_weight * KL`` trains encoder and decoder.
2. Critic warm-up, VAE frozen: ``D(fake) - D(real) + lambda * GP`` trains the critic.
3. Adversarial: per step, ``n_critic`` critic steps, then one encoder/decoder step on
   ``rec + kl_weight * KL + w_adv * (-D(fake))``.

In phases 2 and 3 the critic compares *real units of speaker s* with *units of other
speakers converted to s*: ``fake = decode(z(x_other), s)``; it is conditioned on s.
The adversarial term reaches the decoder and its speaker embedding only: ``z`` of the
adversarial branch is detached, so the encoder's gradient comes from the VAE loss alone,
and ``backward(inputs=...)`` leaves the critic's gradients untouched.

With ``model.context = k > 0`` every encoder call gets windows of frames t-k..t+k
(from the sampler: :meth:`~vawgan.data.Sampler.vae_batch`, ``units_not_of``,
``adversarial``); the reconstruction target is the centre frame and the critics see
decoder outputs and real frames/segments as with k = 0.

With ``model.arch = "conv"`` the VAE batches are segments of ``model.segment``
consecutive frames (silent frames included as context, masked out of the losses) and
the adversarial branch converts whole source segments, so the decoder is trained, and
judged by the critic, on the trajectories it outputs at conversion.
"""

from __future__ import annotations

import contextlib
from typing import Dict, List

import torch

from .config import Config
from .data import Sampler
from .losses import (active_units, critic_loss, gaussian_nll, generator_adv_loss,
                     kl_standard_normal, reparameterize)
from .model import VAWGAN
from .precision import resolve_precision_why

Metrics = Dict[str, torch.Tensor]


class StepRunner:
    """Optimizers and per-phase steps for a :class:`~vawgan.model.VAWGAN`.

    Parameters
    ----------
    model : VAWGAN
    cfg : Config
    sampler : Sampler
        Its generator is the only randomness used here (reparameterization and
        interpolation noise too), so checkpointing ``sampler.gen`` makes resume exact.
    """

    def __init__(self, model: VAWGAN, cfg: Config, sampler: Sampler):
        self.model = model
        self.cfg = cfg
        self.tc = cfg.train
        self.sampler = sampler
        self.gen = sampler.gen
        dev = next(model.parameters()).device
        self.device = dev
        # CUDA: fused Adam, capturable so that whole steps can be captured in a graph
        kw = {"fused": True, "capturable": True} if dev.type == "cuda" else {"foreach": True}
        self.enc_params = list(model.encoder.parameters())
        self.dec_params = list(model.decoder.parameters())
        self.critic_params = list(model.critic.parameters())
        self.opt_enc = torch.optim.Adam(self.enc_params, lr=self.tc.lr_enc, **kw)
        self.opt_dec = torch.optim.Adam(self.dec_params, lr=self.tc.lr_dec, **kw)
        self.opt_critic = torch.optim.Adam(self.critic_params, lr=self.tc.lr_critic,
                                           betas=self.tc.critic_betas_pair(), **kw)
        self.precision, self.precision_reason = resolve_precision_why(self.tc.precision, dev)
        self.bf16 = self.precision == "bf16"
        # speaker-adversarial classifier on the posterior mean (training only: not part
        # of the model or the bundle; its state is checkpointed with the optimizers)
        self.spk_cls = None
        if self.tc.spk_adv_weight > 0:
            from .model import _mlp

            mc = cfg.model
            self.spk_cls = _mlp(mc.z_dim, mc.hidden, 1, model.n_speakers,
                                mc.leaky_slope).to(dev)
            self.cls_params = list(self.spk_cls.parameters())
            self.opt_cls = torch.optim.Adam(self.cls_params, lr=self.tc.lr_enc, **kw)
        self.adv_mean = self.tc.adv_input == "mean"
        if self.tc.cyc_weight > 0 and model.n_speakers < 2:
            from .errors import ConfigError

            raise ConfigError("train.cyc_weight > 0 needs at least 2 speakers to convert between")
        self.n_cyc = max(1, self.tc.batch_size // 4)
        self.segments = sampler.segments
        self.rec_w = rec_weights(self.tc.rec_weight, sampler.data, dev)
        self.batch = self.tc.batch_size
        self.unit = sampler.unit
        self.n_units = max(1, self.batch // self.unit)  # critic items per step
        # items of a critic batch the gradient penalty is taken over (train.gp_fraction)
        self.gp_rows = max(1, round(self.n_units * self.tc.gp_fraction))
        # adaptive adversarial weight: running sums of |rec| and |adv| since last estimate
        self.adv_w = torch.tensor(self.tc.adv_weight, device=dev)
        self.acc_rec = torch.zeros((), device=dev)
        self.acc_adv = torch.zeros((), device=dev)
        self.acc_n = 0
        self.adv_estimated = False

    # ------------------------------------------------------------------ state
    def set_phase_lr(self, phase: int, step: int = 0, phase_steps: int = 1) -> None:
        """Learning rates of a phase, and with ``lr_schedule: cosine`` of step ``step``
        of ``phase_steps`` in phase 1 (a function of the step only, so resume at any
        step is exact)."""
        scale = self.tc.lr_gan_scale if phase == 3 else 1.0
        if phase == 1 and self.tc.lr_schedule == "cosine":
            import math

            lo = self.tc.lr_gan_scale
            scale = lo + (1.0 - lo) * 0.5 * (1.0 + math.cos(math.pi * step / max(phase_steps, 1)))
        for g in self.opt_enc.param_groups:
            g["lr"] = self.tc.lr_enc * scale
        for g in self.opt_dec.param_groups:
            g["lr"] = self.tc.lr_dec * scale

    def state_dict(self) -> Dict:
        extra = {}
        if self.spk_cls is not None:
            extra = {"spk_cls": self.spk_cls.state_dict(), "opt_cls": self.opt_cls.state_dict()}
        return {**extra, "opt_enc": self.opt_enc.state_dict(), "opt_dec": self.opt_dec.state_dict(),
                "opt_critic": self.opt_critic.state_dict(),
                "gen": self.gen.get_state(),
                "adv": {"w": self.adv_w.cpu(), "rec": self.acc_rec.cpu(),
                        "adv": self.acc_adv.cpu(), "n": self.acc_n,
                        "estimated": self.adv_estimated}}

    def load_state_dict(self, d: Dict) -> None:
        self.opt_enc.load_state_dict(d["opt_enc"])
        self.opt_dec.load_state_dict(d["opt_dec"])
        self.opt_critic.load_state_dict(d["opt_critic"])
        if self.spk_cls is not None:
            self.spk_cls.load_state_dict(d["spk_cls"])
            self.opt_cls.load_state_dict(d["opt_cls"])
        self.gen.set_state(d["gen"].cpu() if self.device.type == "cpu" else d["gen"])
        self.adv_w.copy_(d["adv"]["w"])
        self.acc_rec.copy_(d["adv"]["rec"])
        self.acc_adv.copy_(d["adv"]["adv"])
        self.acc_n = int(d["adv"]["n"])
        self.adv_estimated = bool(d["adv"]["estimated"])

    # ------------------------------------------------------------------ networks
    def _autocast(self):
        if self.bf16:
            # no weight-cast cache: it would be stale across CUDA-graph replays
            return torch.autocast(self.device.type, dtype=torch.bfloat16, cache_enabled=False)
        return contextlib.nullcontext()

    def enc(self, x: torch.Tensor):
        """Encoder (matrix products in bf16 when enabled; outputs always float32)."""
        with self._autocast():
            mu, lv = self.model.encoder(x)
        return mu.float(), lv.float()

    def dec(self, z: torch.Tensor, spk: torch.Tensor):
        with self._autocast():
            mean, lv = self.model.decoder(z, spk)
        return mean.float(), lv.float()

    def critic(self, x: torch.Tensor, spk: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            out = self.model.critic(x, spk)
        return out.float()

    # ------------------------------------------------------------------ pieces
    def _vae_terms(self, x: torch.Tensor, spk: torch.Tensor, xin: torch.Tensor, mask=None):
        mu, lv = self.enc(xin)
        z = reparameterize(mu, lv, self.gen)
        mean, dlv = self.dec(z, spk)
        rec = gaussian_nll(x, mean, dlv, self.rec_w, mask)
        kl = kl_standard_normal(mu, lv, mask)
        return rec, kl, mu, lv, dlv

    def _speaker_adversarial(self, mu: torch.Tensor, spk: torch.Tensor):
        """Train the speaker classifier on detached ``mu`` one step; return the
        encoder's term (cross-entropy of its prediction to the uniform distribution,
        minimized by the encoder) and the classifier's batch accuracy.

        ``mu`` (B, K) with ``spk`` (B,), or segments (n, L, K) with ``spk`` (n,).
        """
        if mu.dim() == 3:
            spk = spk[:, None].expand(-1, mu.shape[1])
        flat, lab = mu.reshape(-1, mu.shape[-1]), spk.reshape(-1)
        logits = self.spk_cls(flat.detach())
        loss = torch.nn.functional.cross_entropy(logits, lab)
        self.opt_cls.zero_grad(set_to_none=True)
        loss.backward(inputs=self.cls_params)
        self.opt_cls.step()
        acc = (logits.detach().argmax(dim=-1) == lab).float().mean()
        uniform = -torch.log_softmax(self.spk_cls(flat), dim=-1).mean()
        return uniform, acc

    def _cycle_term(self) -> torch.Tensor:
        """The cycle-consistency term (``train.cyc_weight``; CycleVAE, Tobing et al. 2019).

        Frames x of speakers s are converted to random other speakers t with sampled
        z, the converted frames (the window of each, with context) are encoded again
        and decoded with s: the NLL of x under that decoding. Gradients reach the
        encoder and the decoder through both passes. (With the KL of the second
        posterior added as well, the KL pressure doubles and the posterior collapses
        at KL weight 1, as with ``kl_weight: 2``: every latent dim inactive within
        1,000 steps on VCC2016.)
        """
        x, spk, win, mask = self.sampler.cycle_batch(self.n_cyc)
        S = self.model.n_speakers
        tgt = (spk + torch.randint(1, S, spk.shape, generator=self.gen,
                                   device=spk.device)) % S
        if self.segments:  # (m, L, D) sequences
            mu, lv = self.enc(win)
            conv = self.dec(reparameterize(mu, lv, self.gen), tgt)[0]
            mu2, lv2 = self.enc(conv)
        else:  # (n, W, Din): the W = 2k+1 windows around each frame
            n, W, Din = win.shape
            mu, lv = self.enc(win.reshape(n * W, Din))
            conv = self.dec(reparameterize(mu, lv, self.gen), tgt.repeat_interleave(W))[0]
            mu2, lv2 = self.enc(conv.reshape(n, W * conv.shape[-1]))
        mean, dlv = self.dec(reparameterize(mu2, lv2, self.gen), spk)
        return gaussian_nll(x, mean, dlv, self.rec_w, mask)

    def _extra_terms(self, loss: torch.Tensor, mu: torch.Tensor, spk: torch.Tensor):
        """``loss`` plus the optional terms of the encoder/decoder loss of phases 1 and 3
        (the speaker-adversarial term, then the cycle term), and their metrics
        (``spk_acc``, ``cyc``)."""
        m: Metrics = {}
        if self.spk_cls is not None:
            uniform, m["spk_acc"] = self._speaker_adversarial(mu, spk)
            loss = loss + self.tc.spk_adv_weight * uniform
        if self.tc.cyc_weight > 0:
            cyc = self._cycle_term()
            loss = loss + self.tc.cyc_weight * cyc
            m["cyc"] = cyc.detach()
        return loss, m

    @staticmethod
    def _vae_metrics(rec, kl, mu, lv, dlv) -> Metrics:
        return {"rec": rec.detach(), "kl": kl.detach(), "mu_abs": mu.detach().abs().mean(),
                "sigma": torch.exp(0.5 * lv.detach()).mean(), "active": active_units(mu).float(),
                "dec_logvar": dlv.detach().mean()}

    @torch.no_grad()
    def _fake(self, source: torch.Tensor, spk: torch.Tensor) -> torch.Tensor:
        """decode(z(source), spk) with the VAE frozen (:func:`decode_units`)."""
        sample = None if self.adv_mean else (lambda mu, lv: reparameterize(mu, lv, self.gen))
        return decode_units(self.enc, self.dec, source, spk, self.segments, sample)

    def _critic_update(self, real, fake, spk) -> Metrics:
        loss, wdist, gp = critic_loss(self.critic, real, fake, spk, self.tc.gp_lambda,
                                      self.gen, self.gp_rows)
        self.opt_critic.zero_grad(set_to_none=True)
        loss.backward(inputs=self.critic_params)
        self.opt_critic.step()
        return {"wdist": wdist, "gp": gp, "critic_loss": loss.detach()}

    # ------------------------------------------------------------------ steps
    def vae_step(self) -> Metrics:
        """Phase 1: one encoder + decoder step on the VAE loss."""
        x, spk, xin, mask = self.sampler.vae_batch(self.batch)
        rec, kl, mu, lv, dlv = self._vae_terms(x, spk, xin, mask)
        loss, extra = self._extra_terms(rec + self.tc.kl_weight * kl, mu, spk)
        self.opt_enc.zero_grad(set_to_none=True)
        self.opt_dec.zero_grad(set_to_none=True)
        loss.backward(inputs=self.enc_params + self.dec_params)
        self.opt_enc.step()
        self.opt_dec.step()
        out = self._vae_metrics(rec, kl, mu, lv, dlv)
        out.update(extra)
        return out

    def critic_steps(self, k: int) -> Metrics:
        """``k`` critic steps with the VAE frozen; their data is drawn and converted at once.

        Returns the metrics of the last critic step.
        """
        real, spk, source = self.sampler.adversarial(k * self.n_units)
        fake = self._fake(source, spk)
        n = self.n_units
        m: Metrics = {}
        for i in range(k):
            sl = slice(i * n, (i + 1) * n)
            m = self._critic_update(real[sl], fake[sl], spk[sl])
        return m

    def gan_step(self) -> Metrics:
        """Phase 3: ``n_critic`` critic steps, then one generator (encoder + decoder) step."""
        out = self.gan_step_body()
        self.after_gan_step()
        return out

    def gan_step_body(self) -> Metrics:
        """The device work of :meth:`gan_step` (no host logic: CUDA-graph capturable)."""
        m = self.critic_steps(self.tc.n_critic)
        # generator: VAE batch of frames + adversarial batch of other-speaker units
        x, spk, xin, mask = self.sampler.vae_batch(self.batch)
        tgt = self.sampler.units(self.n_units)[1]
        src = self.sampler.units_not_of(tgt)  # encoder inputs (n, L, Din)
        n, L, Din = src.shape
        B, D = x.shape[0], x.shape[-1]
        if self.segments:  # arch "conv": VAE segments and source units are sequences
            enc_in, dec_spk = torch.cat([xin, src]), torch.cat([spk, tgt])
        else:
            enc_in = torch.cat([xin, src.reshape(n * L, Din)])
            dec_spk = torch.cat([spk, tgt.repeat_interleave(L)])
        mu_all, lv_all = self.enc(enc_in)
        z_all = reparameterize(mu_all, lv_all, self.gen)
        # the adversarial loss never reaches the encoder; with adv_input "mean" the
        # adversarial branch decodes what conversion decodes, the posterior mean
        z_adv = (mu_all if self.adv_mean else z_all)[B:].detach()
        mean_all, dlv_all = self.dec(torch.cat([z_all[:B], z_adv]), dec_spk)
        mu, lv = mu_all[:B], lv_all[:B]
        mean = mean_all[:B]
        dlv = dlv_all[:B] if dlv_all.dim() > 1 else dlv_all
        rec = gaussian_nll(x, mean, dlv, self.rec_w, mask)
        kl = kl_standard_normal(mu, lv, mask)
        adv = generator_adv_loss(self.critic, mean_all[B:].reshape(n, L, D), tgt)
        if self.tc.adv_balance == "fixed":
            w = self.tc.adv_weight
        else:
            w = self.adv_w
            self.acc_rec += rec.detach().abs()
            self.acc_adv += adv.detach().abs()
        loss, extra = self._extra_terms(rec + self.tc.kl_weight * kl + w * adv, mu, spk)
        self.opt_enc.zero_grad(set_to_none=True)
        self.opt_dec.zero_grad(set_to_none=True)
        loss.backward(inputs=self.enc_params + self.dec_params)
        self.opt_enc.step()
        self.opt_dec.step()
        out = self._vae_metrics(rec, kl, mu, lv, dlv)
        out.update(m)
        out.update(extra)
        out["adv"] = adv.detach()
        out["adv_w"] = (w.detach().clone() if torch.is_tensor(w)
                        else torch.full((), float(w), device=self.device))
        return out

    def after_gan_step(self) -> None:
        """Adaptive balance: after the first generator step and then every
        ``adv_balance_every`` steps, set ``w_adv = adv_weight * mean|rec| / mean|adv|``
        over the steps since the last estimate (the first step uses ``adv_weight``).
        Device-side tensors only, no host synchronisation.
        """
        if self.tc.adv_balance == "fixed":
            return
        self.acc_n += 1
        if self.acc_n >= self.tc.adv_balance_every or not self.adv_estimated:
            ratio = self.acc_rec / self.acc_adv.clamp_min(1e-6)
            self.adv_w.copy_(self.tc.adv_weight * ratio)
            self.acc_rec.zero_()
            self.acc_adv.zero_()
            self.acc_n = 0
            self.adv_estimated = True

    def all_param_groups(self) -> List[List[torch.nn.Parameter]]:
        return [self.enc_params, self.dec_params, self.critic_params]


def decode_units(enc, dec, source: torch.Tensor, spk: torch.Tensor, segments: bool,
                 sample=None) -> torch.Tensor:
    """Units of other frames converted to speakers ``spk``: decode(z(source), spk).

    Parameters
    ----------
    enc, dec : callables
        ``enc(x) -> (mu, logvar)`` and ``dec(z, spk) -> (mean, logvar)``.
    source : Tensor, shape (n, L, Din)
        Encoder inputs of n units (Din = D, or the window size with context).
    spk : LongTensor, shape (n,)
    segments : bool
        Each unit is a sequence for the encoder and decoder (arch "conv"), else L
        independent frames.
    sample : callable ``(mu, logvar) -> z``, optional
        Default: z is the posterior mean, what conversion decodes.

    Returns
    -------
    Tensor, shape (n, L, D)
    """
    if segments:
        mu, lv = enc(source)
        return dec(mu if sample is None else sample(mu, lv), spk)[0]
    n, L, Din = source.shape
    mu, lv = enc(source.reshape(n * L, Din))
    mean, _ = dec(mu if sample is None else sample(mu, lv), spk.repeat_interleave(L))
    return mean.reshape(n, L, mean.shape[-1])


def rec_weights(kind: str, data, device, mcd_dims: int = 24):
    """Per-dim weights of the reconstruction NLL (``train.rec_weight``), or None.

    ``"mcd"``: the training frames are z-scored per speaker, but MCD measures raw
    c1..c24, where the low orders have the largest scale. Dim d <= ``mcd_dims`` gets
    ``1 + s_d^2 / mean_{d' <= mcd_dims} s_{d'}^2`` with ``s_d^2`` the speakers' mean
    variance of c_d (``mcep_std``), the others 1; normalized to mean 1 over dims, so
    the balance against the KL term is kept.

    Returns
    -------
    Tensor, shape (D,), or None for ``"uniform"``
    """
    import numpy as np

    if kind == "uniform":
        return None
    if kind != "mcd":
        raise ValueError(f"rec_weight {kind!r}: use 'uniform' or 'mcd'")
    var = np.mean([np.asarray(std, dtype=np.float64) ** 2 for _, std in data.stats.values()],
                  axis=0)
    k = min(mcd_dims, len(var))
    w = np.ones(len(var))
    w[:k] += var[:k] / var[:k].mean()
    w /= w.mean()
    return torch.as_tensor(w, dtype=torch.float32, device=device)
