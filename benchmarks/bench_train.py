"""Training-step speed: vawgan's step runner against a plain eager loop, same run, same batch.

The *plain loop* is the straightforward PyTorch implementation of the same phase-3
step (n_critic critic steps + one generator step): per critic step it samples its own
batch, encodes/decodes the fakes separately, calls the critic three times (real, fake,
interpolate), uses default ``torch.optim.Adam`` and calls ``.item()`` on every loss
for logging; the generator step toggles ``requires_grad`` on the critic.

The plain loop runs with torch's default thread count (all cores), as a plain script
would; it is also timed with vawgan's thread count to separate that setting from the
rest. vawgan is timed in fp32 and in its default precision ("auto": bf16 matrix
products where the hardware has them), and with ``--gp-fraction`` < 1 also with the
gradient penalty over that part of each critic batch (``train.gp_fraction``: fewer
multiply-adds than the plain loop, a change of the estimator, not of the code's speed).
Timings are interleaved rounds, best of each, because the machine may be shared. On a
machine shared with other jobs, ``--clock cpu`` times the CPU time of this process
(``time.process_time``: every thread, OpenMP spinning included) instead of the wall
clock: with one thread it is the work of the step itself, whatever else runs beside it.

Prints ms per step and frames/s for phase 1 (VAE) and phase 3 (adversarial: n_critic
critic steps + 1 generator step) and the ratio to the plain loop (target on CPU,
batch 256: phase-3 ratio >= 2).

Usage::

    python benchmarks/bench_train.py [--device cpu|cuda] [--batch 256] [--steps 30]
        [--threads 2] [--frames 200000] [--clock wall|cpu] [--gp-fraction 0.25]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from vawgan.config import Config  # noqa: E402
from vawgan.data import Sampler, TrainingData  # noqa: E402
from vawgan.losses import gaussian_nll, kl_standard_normal  # noqa: E402
from vawgan.model import build_model  # noqa: E402
from vawgan.trainstep import StepRunner  # noqa: E402


def synthetic_data(n_frames: int, n_spk: int, device) -> TrainingData:
    """Random frames in utterances of 300 frames, contiguous per speaker."""
    g = torch.Generator().manual_seed(0)
    frames = torch.randn(n_frames, 39, generator=g)
    per = n_frames // n_spk
    utt_len = []
    utt_spk = []
    for k in range(n_spk):
        n = per if k < n_spk - 1 else n_frames - per * (n_spk - 1)
        lens = [300] * (n // 300) + ([n % 300] if n % 300 else [])
        utt_len += lens
        utt_spk += [k] * len(lens)
    utt_len = np.array(utt_len)
    utt_spk = np.array(utt_spk)
    spk = torch.from_numpy(np.repeat(utt_spk, utt_len))
    count = np.bincount(utt_spk, weights=utt_len, minlength=n_spk).astype(np.int64)
    return TrainingData(frames=frames.to(device), spk=spk.to(device),
                        speakers=[f"S{k}" for k in range(n_spk)],
                        spk_start=np.concatenate([[0], np.cumsum(count)[:-1]]), spk_count=count,
                        utt_start=np.concatenate([[0], np.cumsum(utt_len)[:-1]]),
                        utt_len=utt_len, utt_spk=utt_spk)


class PlainLoop:
    """The straightforward eager implementation of the phase-1 and phase-3 steps."""

    def __init__(self, model, cfg: Config, data: TrainingData):
        self.m, self.tc, self.data = model, cfg.train, data
        # the encoder's input contract (+-model.context frames of the same utterance):
        # built the same way as vawgan's, it is not what is being compared
        self.win = Sampler(data, 1, None, context=cfg.model.sampler_context())
        self.opt_e = torch.optim.Adam(model.encoder.parameters(), lr=self.tc.lr_enc)
        self.opt_d = torch.optim.Adam(model.decoder.parameters(), lr=self.tc.lr_dec)
        self.opt_c = torch.optim.Adam(model.critic.parameters(), lr=self.tc.lr_critic,
                                      betas=(0.5, 0.9))
        self.log = []

    def _batch(self, n):
        idx = torch.randint(0, self.data.n_frames, (n,), device=self.data.frames.device)
        return self.data.frames[idx], self.data.spk[idx], self.win.windows(idx)

    def _fake(self, w, s):
        """The adversarial branch's decoded frames (posterior mean with adv_input mean)."""
        mu, lv = self.m.encoder(w)
        z = mu if self.tc.adv_input == "mean" else mu + torch.exp(0.5 * lv) * torch.randn_like(mu)
        return self.m.decoder(z.detach(), s)[0]

    def _vae(self, x, s, w):
        mu, lv = self.m.encoder(w)
        z = mu + torch.exp(0.5 * lv) * torch.randn_like(mu)
        mean, dlv = self.m.decoder(z, s)
        return gaussian_nll(x, mean, dlv) + self.tc.kl_weight * kl_standard_normal(mu, lv)

    def vae_step(self, b):
        x, s, w = self._batch(b)
        loss = self._vae(x, s, w)
        self.opt_e.zero_grad()
        self.opt_d.zero_grad()
        loss.backward()
        self.opt_e.step()
        self.opt_d.step()
        self.log.append(loss.item())

    def gan_step(self, b):
        crit = self.m.critic
        for _ in range(self.tc.n_critic):
            real, s, _ = self._batch(b)
            _, _, w_src = self._batch(b)
            with torch.no_grad():
                fake = self._fake(w_src, s)
            e = torch.rand(b, 1, device=real.device)
            xh = (e * real + (1 - e) * fake).requires_grad_(True)
            d_hat = crit(xh, s)
            g = torch.autograd.grad(d_hat.sum(), xh, create_graph=True)[0]
            gp = ((g.norm(2, dim=1) - 1) ** 2).mean()
            loss = crit(fake, s).mean() - crit(real, s).mean() + self.tc.gp_lambda * gp
            self.opt_c.zero_grad()
            loss.backward()
            self.opt_c.step()
            self.log.append(loss.item())
        for p in crit.parameters():
            p.requires_grad_(False)
        x, s, w = self._batch(b)
        vae = self._vae(x, s, w)
        _, _, w_src = self._batch(b)
        fake = self._fake(w_src, s)
        loss = vae - self.tc.adv_weight * crit(fake, s).mean()
        self.opt_e.zero_grad()
        self.opt_d.zero_grad()
        loss.backward()
        self.opt_e.step()
        self.opt_d.step()
        for p in crit.parameters():
            p.requires_grad_(True)
        self.log.append(loss.item())


#: ``--clock``: wall time, or the CPU time of the process (all its threads)
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def _time(fn, steps, device, warm=3, clock=time.perf_counter):
    for _ in range(warm):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = clock()
    for _ in range(steps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (clock() - t) / steps


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="0 = vawgan's default")
    ap.add_argument("--frames", type=int, default=200000, help="synthetic training frames")
    ap.add_argument("--precision", default="auto", help="second vawgan row (first is fp32)")
    ap.add_argument("--gp-fraction", type=float, default=0.25,
                    help="also time vawgan (second precision) with train.gp_fraction F, the "
                         "gradient penalty over a part of each critic batch (1 = no such row)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                    help="wall time, or the process's CPU time (a machine shared with other "
                         "jobs; CPU only)")
    args = ap.parse_args(argv)
    if args.clock == "cpu" and args.device != "cpu":
        ap.error("--clock cpu times CPU work: use it with --device cpu")
    clock = CLOCKS[args.clock]
    from vawgan.train import set_threads

    torch_default_threads = torch.get_num_threads()
    nth = set_threads(args.threads)
    dev = torch.device(args.device)
    # frame (MLP) critic; the speaker-adversarial classifier off in both (the plain loop
    # has none)
    cfg = Config.from_dict({"train": {"batch_size": args.batch, "spk_adv_weight": 0.0}})
    data = synthetic_data(args.frames, 10, dev)
    print(f"device {dev}, torch {torch.__version__}, threads {nth} (torch default "
          f"{torch_default_threads}), batch {args.batch}, "
          f"n_critic {cfg.train.n_critic}, frame critic, "
          f"{data.n_frames} frames, {args.clock} clock")
    torch.manual_seed(0)
    plain = PlainLoop(build_model(cfg.model, 10).to(dev), cfg, data)
    runners = {}
    variants = [("fp32", 1.0), (args.precision, 1.0)]
    if args.gp_fraction < 1:
        variants.append((args.precision, args.gp_fraction))
    for prec, gpf in variants:
        c = Config.from_dict({"train": {"batch_size": args.batch, "precision": prec,
                                        "spk_adv_weight": 0.0, "gp_fraction": gpf}})
        torch.manual_seed(0)
        model = build_model(c.model, 10).to(dev)
        r = StepRunner(model, c, Sampler.for_model(data, c.model,
                                                   torch.Generator(device=dev).manual_seed(0)))
        runners[f"vawgan {prec}" + (f"->{'bf16' if r.bf16 else 'fp32'}" if prec == "auto" else "")
                + (f" gp {gpf:g}" if gpf < 1 else "")] = r
    b = args.batch
    per3 = (cfg.train.n_critic + 1) * b
    # interleaved rounds, best of each (the machine is shared: other load comes and goes)
    # the baseline "plain" runs with torch's default thread count (what a plain script
    # gets); "plain, N thr" with vawgan's, to separate the thread setting from the rest
    cands = {"plain": (torch_default_threads, lambda: plain.vae_step(b), lambda: plain.gan_step(b))}
    if nth != torch_default_threads:
        cands[f"plain, {nth} thr"] = (nth, cands["plain"][1], cands["plain"][2])
    cands.update({k: (nth, r.vae_step, r.gan_step) for k, r in runners.items()})
    if dev.type == "cuda" and cfg.train.cuda_graph:
        from vawgan.traingraph import GraphedSteps

        for k, r in list(runners.items()):
            gs = GraphedSteps(r)
            cands[k + " graph"] = (nth, lambda gs=gs: gs.step(1), lambda gs=gs: gs.step(3))
    best = {k: [float("inf"), float("inf")] for k in cands}
    for _ in range(args.rounds):
        for k, (threads, f1, f3) in cands.items():
            torch.set_num_threads(threads)
            best[k][0] = min(best[k][0], _time(f1, args.steps * 3, dev, warm=1, clock=clock))
            best[k][1] = min(best[k][1], _time(f3, args.steps, dev, warm=1, clock=clock))
    torch.set_num_threads(nth)
    # the goal's ratio: against the plain loop at vawgan's thread count (the same row
    # as "plain" when torch's default already is that count)
    same = best[f"plain, {nth} thr" if f"plain, {nth} thr" in best else "plain"]
    print(f"{'':<27}{'phase 1 ms':>11}{'fr/s':>9}{'ratio':>7}{'phase 3 ms':>12}{'fr/s':>9}"
          f"{'ratio':>7}{f'ratio {nth} thr':>16}")
    for k, (t1, t3) in best.items():
        print(f"{k:<27}{t1 * 1e3:>11.2f}{b / t1:>9.0f}{best['plain'][0] / t1:>7.2f}"
              f"{t3 * 1e3:>12.2f}{per3 / t3:>9.0f}{best['plain'][1] / t3:>7.2f}"
              f"{f'{same[0] / t1:.2f} / {same[1] / t3:.2f}':>16}")
    print(f"ratio: the plain loop's time over the row's, with torch's default threads; "
          f"ratio {nth} thr: at {nth} thread(s), phase 1 / phase 3 (goal: phase 3 >= 2 on "
          f"CPU, batch 256)")
    if dev.type == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB "
              f"(training frames: {data.frames.numel() * 4 / 2**20:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
