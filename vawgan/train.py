"""Training: the three-phase VAW-GAN schedule, checkpoints, exact resume.

Schedule (lengths in ``TrainConfig``; one global step counter)::

    steps [0, vae_steps)                      phase 1  VAE pre-training (encoder + decoder)
    [vae_steps, + critic_steps)               phase 2  critic warm-up, VAE frozen
    [.., + gan_steps)                         phase 3  n_critic critic steps + 1 generator step

At the end of phase 1 the VAE bundle ``vae.pt`` (kind "vae", the over-smoothed
baseline) is written, at the end ``vawgan.pt`` (kind "vawgan"). The step math lives
in :mod:`vawgan.trainstep`.

Output folder ``EXPDIR``::

    config.yaml        resolved configuration (also inside every checkpoint)
    checkpoint.pt      latest checkpoint (atomic; every train.ckpt_every steps)
    history.jsonl      one JSON line per log interval (step, phase, rec, kl, wdist, gp,
                       adv, adv_w, mu_abs, sigma, active, dec_logvar, frames_per_s)
    tb/                TensorBoard events (when tensorboard is installed)
    vae.pt, vawgan.pt  model bundles

Resume (``--resume``) restores weights, the three optimizer states, the step (hence
the phase), the adaptive weight and the state of the one random generator that draws
batches and noise, so the continued run equals an uninterrupted one; a run killed at
any moment loses at most ``ckpt_every`` steps.

The command is :mod:`vawgan.commands.train`.

Example
-------
``vawgan train --dump dump --stats dump/stats.json --utts-file data/train.list
--config conf/vawgan.yaml --outdir exp/vawgan --device auto``
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Dict, Optional

from .config import Config, save_config
from .errors import CheckpointError, ConfigError, TrainingError
from .io import PathLike, atomic_path, atomic_write_text, remove_stale_temporaries

CKPT_NAME = "checkpoint.pt"
CKPT_FORMAT = "vawgan-checkpoint"
CKPT_VERSION = 1
_LOG_KEYS = ("rec", "kl", "wdist", "gp", "critic_loss", "adv", "adv_w", "mu_abs", "sigma",
             "active", "dec_logvar", "spk_acc", "cyc")



def resolve_device(name: str):
    """``"auto"`` -> CUDA when available else CPU; ``"cuda"`` without CUDA is an error."""
    import torch

    if name not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"device {name!r}: use auto, cpu or cuda")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda requested but no CUDA device is available")
    return torch.device(name)


def set_threads(n: int) -> int:
    """Torch CPU threads: ``n``, or for 0 ``max(1, min(4, cores // 2))``; returns it.

    Half the cores by default: these small matrices gain little from more threads,
    and on a shared machine OpenMP threads spinning against other processes made a
    2-thread run on 2 busy cores ~5x slower than 1 thread.
    """
    import torch

    if n <= 0:
        n = max(1, min(4, (os.cpu_count() or 1) // 2))
    torch.set_num_threads(n)
    return n


class Trainer:
    """Runs the schedule on loaded :class:`~vawgan.data.TrainingData`.

    Parameters
    ----------
    cfg : Config
    data : TrainingData
        Already on ``device``.
    outdir : path
    device : torch.device or str
    progress : bool
        Show tqdm bars.
    """

    def __init__(self, cfg: Config, data, outdir: PathLike, device="cpu", progress: bool = True):
        import torch

        from .data import Sampler
        from .model import build_model
        from .trainstep import StepRunner

        self.cfg = cfg
        self.tc = cfg.train
        self.data = data
        self.outdir = Path(outdir)
        self.device = torch.device(device)
        self.progress = progress
        torch.manual_seed(self.tc.seed)
        self.model = build_model(cfg.model, data.n_speakers, data.n_dims).to(self.device)
        gen = torch.Generator(device=self.device)
        gen.manual_seed(self.tc.seed)
        self.sampler = Sampler.for_model(data, cfg.model, gen)
        self.runner = StepRunner(self.model, cfg, self.sampler)
        self.graphed = None
        if self.device.type == "cuda" and self.tc.cuda_graph:
            from .traingraph import GraphedSteps

            self.graphed = GraphedSteps(self.runner)
        self.step = 0
        self.p1 = self.tc.vae_steps
        self.p2 = self.p1 + self.tc.critic_steps
        self.total = self.p2 + self.tc.gan_steps
        self._tb = None

    # ------------------------------------------------------------------ schedule
    def phase(self, step: Optional[int] = None) -> int:
        """Phase (1, 2, 3; 4 = done) of a global step."""
        s = self.step if step is None else step
        return 1 if s < self.p1 else 2 if s < self.p2 else 3 if s < self.total else 4

    def train_step(self) -> Dict[str, Any]:
        """Run the step ``self.step`` (of its phase) and advance the counter."""
        ph = self.phase()
        if ph == 4:
            raise RuntimeError("training is finished")
        cosine = ph == 1 and self.tc.lr_schedule == "cosine"
        if cosine:  # per-step learning rate (phase 1 then runs eagerly on CUDA too)
            self.runner.set_phase_lr(1, self.step, self.p1)
        if self.graphed is not None and not cosine:
            m = self.graphed.step(ph)
        elif ph == 1:
            m = self.runner.vae_step()
        elif ph == 2:
            m = self.runner.critic_steps(1)
        elif ph == 3:
            m = self.runner.gan_step()
        else:
            raise RuntimeError("training is finished")
        self.step += 1
        return m

    # ------------------------------------------------------------------ checkpoints
    @property
    def ckpt_path(self) -> Path:
        return self.outdir / CKPT_NAME

    def _data_signature(self) -> Dict[str, Any]:
        return {"speakers": list(self.data.speakers), "n_frames": self.data.n_frames,
                "n_dims": self.data.n_dims}

    def save_checkpoint(self) -> None:
        """Write ``checkpoint.pt`` and ``config.yaml`` atomically."""
        import torch

        obj = {"format": CKPT_FORMAT, "format_version": CKPT_VERSION, "step": self.step,
               "phase": self.phase(), "config": self.cfg.to_dict(),
               "data": self._data_signature(),
               "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
               "runner": self.runner.state_dict(),
               "torch_rng": torch.get_rng_state()}
        save_config(self.cfg, self.outdir / "config.yaml")
        with atomic_path(self.ckpt_path, suffix=".pt") as tmp:
            torch.save(obj, tmp)

    def load_checkpoint(self, path: Optional[PathLike] = None) -> None:
        """Restore everything from a checkpoint (see the module docstring)."""
        import torch

        path = Path(path or self.ckpt_path)
        if not path.exists():
            raise CheckpointError(f"{path}: no checkpoint to resume from")
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise CheckpointError(f"{path}: corrupt or truncated checkpoint "
                                  f"({type(e).__name__})") from None
        if not isinstance(obj, dict) or obj.get("format") != CKPT_FORMAT:
            raise CheckpointError(f"{path}: not a vawgan checkpoint")
        if obj.get("format_version", 0) > CKPT_VERSION:
            raise CheckpointError(f"{path}: checkpoint format is newer than this vawgan")
        if obj["data"] != self._data_signature():
            raise CheckpointError(f"{path}: made on other training data "
                                  f"({obj['data']['n_frames']} frames of {obj['data']['speakers']})")
        theirs = Config.from_dict(obj["config"]).to_dict()["model"]
        if theirs != self.cfg.to_dict()["model"]:
            raise CheckpointError(f"{path}: model config differs from the checkpoint's")
        for k in ("seed", "batch_size", "n_critic"):
            if obj["config"]["train"][k] != getattr(self.tc, k):
                raise CheckpointError(f"{path}: train.{k} differs from the checkpoint's "
                                      f"({obj['config']['train'][k]})")
        self.model.load_state_dict(obj["model"])
        self.runner.load_state_dict(obj["runner"])
        torch.set_rng_state(obj["torch_rng"])
        self.step = int(obj["step"])
        if self.step > self.total:
            raise CheckpointError(f"{path}: checkpoint is at step {self.step}, past this "
                                  f"schedule's {self.total} steps")

    def init_from_vae(self, path: PathLike) -> None:
        """Take encoder and decoder weights from a VAE bundle and skip phase 1.

        The bundle must come from the same speakers and the same encoder/decoder
        settings (the critic settings may differ). ``vae.pt`` of this run is that
        bundle's weights, re-saved with this run's config.
        """
        import torch

        from .bundle import load_bundle

        b = load_bundle(path)
        if list(b.speakers) != list(self.data.speakers):
            raise CheckpointError(f"{path}: speakers {b.speakers} differ from the data's "
                                  f"{self.data.speakers}")
        theirs, ours = b.config.model.generator_settings(), self.cfg.model.generator_settings()
        diff = [k for k in ours if theirs[k] != ours[k]]
        if diff:
            raise CheckpointError(f"{path}: model.{diff[0]} differs ({theirs[diff[0]]} "
                                  f"vs {ours[diff[0]]})")
        sd = {k: torch.from_numpy(v.copy()) for k, v in b.state_dict.items()
              if k.startswith(("encoder.", "decoder."))}
        missing, _ = self.model.load_state_dict(sd, strict=False)
        if any(k.startswith(("encoder.", "decoder.")) for k in missing):
            raise CheckpointError(f"{path}: encoder/decoder weights missing from the bundle")
        self.step = self.p1
        if self.p1 > 0:
            self.save_bundle("vae", info={"init_from": str(path)})

    # ------------------------------------------------------------------ bundles
    def save_bundle(self, kind: str, path: Optional[PathLike] = None,
                    info: Optional[Dict[str, Any]] = None) -> Path:
        """Write ``vae.pt`` / ``vawgan.pt`` (or ``path``)."""
        from .export import save_bundle

        path = Path(path or self.outdir / f"{kind}.pt")
        ti = {"step": self.step, "phase": self.phase(), "n_frames": self.data.n_frames,
              "n_utts": len(self.data.utt_len), "device": str(self.device)}
        ti["precision"] = self.runner.precision
        ti["precision_reason"] = self.runner.precision_reason
        ti.update(info or {})
        save_bundle(path, model=self.model, config=self.cfg,
                    speakers=self.data.speakers, stats=self.data.stats_dicts, kind=kind,
                    train_info=ti)
        return path

    # ------------------------------------------------------------------ logging
    @property
    def history_path(self) -> Path:
        return self.outdir / "history.jsonl"

    def _trim_history(self) -> None:
        """Drop history lines after the current step (written after the last checkpoint)."""
        p = self.history_path
        if not p.exists():
            return
        keep = []
        for line in p.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line)["step"] <= self.step:
                    keep.append(line)
            except (ValueError, KeyError, TypeError):
                continue  # a line cut by a kill
        atomic_write_text(p, "".join(k + "\n" for k in keep))

    def _open_tb(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except Exception:  # tensorboard not installed
            return None
        try:
            return SummaryWriter(str(self.outdir / "tb"), purge_step=self.step or None)
        except Exception:  # pragma: no cover
            return None

    def _log(self, sums: Dict[str, Any], counts: Dict[str, int], t0: float, frames: int,
             bar) -> Dict[str, Any]:
        rec: Dict[str, Any] = {"step": self.step, "phase": self.phase(self.step - 1)}
        for k in _LOG_KEYS:
            if k in sums:
                v = float(sums[k]) / counts[k]
                rec[k] = v if math.isfinite(v) else None
        dt = max(time.perf_counter() - t0, 1e-9)
        rec["frames_per_s"] = frames / dt
        rec["time"] = time.time()
        with open(self.history_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")
        if self._tb is not None:
            for k, v in rec.items():
                if k not in ("step", "time") and v is not None:
                    self._tb.add_scalar(f"train/{k}", v, self.step)
        if bar is not None:
            short = {k: rec[k] for k in ("rec", "kl", "cyc", "wdist", "gp", "adv", "active")
                     if k in rec and rec[k] is not None}
            bar.set_postfix({k: f"{v:.3g}" for k, v in short.items()}, refresh=False)
        return rec

    # ------------------------------------------------------------------ loop
    def fit(self, max_steps: Optional[int] = None) -> Dict[str, Any]:
        """Train until the end of the schedule (or ``max_steps`` more steps).

        Returns
        -------
        dict
            The last logged record (empty if nothing was logged).
        """
        from tqdm import tqdm

        self.outdir.mkdir(parents=True, exist_ok=True)
        for name in (CKPT_NAME, "vae.pt", "vawgan.pt", "config.yaml", "history.jsonl"):
            remove_stale_temporaries(self.outdir / name)  # of a run killed mid-write
        save_config(self.cfg, self.outdir / "config.yaml")
        self._trim_history()
        self._tb = self._open_tb()
        end = self.total if max_steps is None else min(self.total, self.step + max_steps)
        self.runner.set_phase_lr(self.phase())
        sums: Dict[str, Any] = {}
        counts: Dict[str, int] = {}
        last: Dict[str, Any] = {}
        t0, frames = time.perf_counter(), 0
        bar = tqdm(total=self.total, initial=self.step, desc=f"phase {self.phase()}",
                   unit="step", disable=not self.progress, dynamic_ncols=True)
        try:
            while self.step < end:
                ph = self.phase()
                if self.step in (self.p1, self.p2):
                    self.runner.set_phase_lr(ph)
                    bar.set_description(f"phase {ph}")
                m = self.train_step()
                frames += self._frames_per_step(ph)
                for k, v in m.items():
                    sums[k] = sums[k] + v if k in sums else v.clone()
                    counts[k] = counts.get(k, 0) + 1
                bar.update(1)
                if self.step % self.tc.log_every == 0 or self.step in (self.p1, self.p2, end):
                    self._check_finite(sums)
                    last = self._log(sums, counts, t0, frames, bar)
                    sums, counts = {}, {}
                    t0, frames = time.perf_counter(), 0
                saving = (self.step % self.tc.ckpt_every == 0 or self.step in (self.p1, self.p2)
                          or self.step == end or self.step == self.total)
                if saving:  # never write a diverged model over the last good one
                    self._check_finite(sums, weights=True)
                if self.step == self.p1 and self.p1 > 0:
                    self.save_bundle("vae", info={"last_log": last})
                if self.step == self.total and self.tc.gan_steps > 0:
                    self.save_bundle("vawgan", info={"last_log": last})
                if (self.step % self.tc.ckpt_every == 0 or self.step in (self.p1, self.p2)
                        or self.step == end):
                    self.save_checkpoint()
        finally:
            bar.close()
            if self._tb is not None:
                self._tb.close()
                self._tb = None
        return last

    def _check_finite(self, sums: Dict[str, Any], weights: bool = False) -> None:
        """TrainingError when a loss summed since the last log line (or, with
        ``weights``, a weight) is NaN or infinite: training stops before anything
        diverged is written, the last checkpoint and bundles stay as they were."""
        import torch

        bad = [k for k, v in sums.items() if not bool(torch.isfinite(v).all())]
        if weights and not bad:
            bad = [f"weight {k}" for k, v in self.model.state_dict().items()
                   if v.is_floating_point() and not bool(torch.isfinite(v).all())][:1]
        if bad:
            kept = (f"{self.ckpt_path} kept as it was" if self.ckpt_path.exists()
                    else "no checkpoint was written")
            raise TrainingError(
                f"training diverged at step {self.step} (phase {self.phase(self.step - 1)}): "
                f"{', '.join(bad)} not finite; {kept}. Lower the learning rates "
                f"(train.lr_*) or the loss weights and start again")

    def _frames_per_step(self, ph: int) -> int:
        """Frames through the networks per step (for the frames/s figure)."""
        b = self.tc.batch_size
        nu = self.runner.n_units * self.runner.unit
        if ph == 1:
            return b
        if ph == 2:
            return nu
        return self.tc.n_critic * nu + b
