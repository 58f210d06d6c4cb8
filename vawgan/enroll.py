"""Add a target speaker to a trained model from a few of their recordings (``vawgan enroll``).

Non-parallel training makes a new target cheap: the encoder already maps any speech to
a speaker-independent code z, and the decoder (the generator) is told the speaker by
an embedding. Enrollment keeps the whole network frozen and learns the new speaker's
rows only: one new row of the decoder's speaker embedding and, with ``adapt="bias"``
(the default), one new row of a per-speaker bias of the decoder's first hidden layer
(``model.spk_bias``, turned on in the bundle written: ``hidden`` values where the
embedding row has ``spk_dim``), on the VAE reconstruction loss of their recordings (z
from the frozen encoder, sampled from the posterior as in training; the Gaussian NLL
summed over dims, averaged over frames):

1. every recording is analysed with the bundle's own feature settings (the one
   extraction path; a folder or list of 10-100 files, any text, any rate), into
   ``<workdir>/dump/<NAME>/`` (resumable: files done are not analysed again);
   unreadable or silent files are listed and left out;
2. the speaker's statistics (mel-cepstrum mean / std, log-f0, GV, MS:
   :func:`vawgan.stats.compute_speaker_stats`) and an f0 search-range proposal;
3. ``steps`` Adam steps on the new rows (a progress bar; a checkpoint in
   ``workdir`` every 500 steps, so a killed run resumes exactly; a checkpoint of
   another set of recordings is refused, not resumed);
4. ``adv_steps`` adversarial steps, as in training's phase 3 but on the new rows
   only: ``train.n_critic`` WGAN-GP steps of the critic's new row (real: the speaker's
   frames; fake: the posterior mean of other frames of theirs decoded with the new
   rows, what conversion outputs), then one step of the decoder's rows on the
   reconstruction NLL + ``adv_weight`` x (-D(fake)). Rows trained on the NLL alone
   decode as smoothly as a VAE (GV distance about 0.3 where the speakers trained with
   the GAN get 0.2); this phase gives back part of that variance with the embedding
   row alone, all of it with the bias row (docs/results.md);
5. a bundle with the base speakers plus the new one (the base speakers convert
   exactly as before: their rows and every weight are unchanged, their bias rows zero).

Both new embedding rows start from the mean of the base speakers' rows, the bias row
from zero. The command is
:mod:`vawgan.commands.enroll`.

Example
-------
::

    vawgan enroll --name ANNA --in recordings_of_anna/ --out anna.pt
    vawgan-convert in.wav out.wav --model anna.pt --target ANNA
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .errors import InputsError, VawganError
from .io import PathLike, atomic_path, atomic_write_text

#: at least this much non-silent speech (seconds) to enroll a speaker
MIN_SPEECH_SECONDS = 20.0
#: Adam steps on the new speaker's embedding (batch 256 frames)
DEFAULT_STEPS = 1500
DEFAULT_LR = 0.01
#: then adversarial steps (each: ``train.n_critic`` critic-row steps, one decoder-row step)
DEFAULT_ADV_STEPS = 1000
#: weight of the adversarial term against the reconstruction NLL, per ``adapt`` (one
#: row has little room: the training's weight 1 barely moves the GV, 3 gets GVD 0.23;
#: with the bias row 3 overshoots the GV (GVD 0.17, MCD +0.25 dB) and 2 matches the
#: model trained with the speaker at N = 50 for +0.16 dB MCD; see docs/results.md)
DEFAULT_ADV_WEIGHTS = {"row": 3.0, "bias": 2.0}
#: learning rate of the critic's new row (Adam)
DEFAULT_CRITIC_LR = 0.001
#: what enrollment learns of the decoder: "row" (the speaker's embedding row) or "bias"
#: (the row and a per-speaker bias of the first hidden layer, ``model.spk_bias``). "bias"
#: on held-out TM3, N = 50: MCD 6.61 / GVD 0.172 against the row's 6.63 / 0.229 and the
#: model trained with TM3's 6.36 / 0.206 (docs/results.md)
ADAPT_MODES = ("row", "bias")
DEFAULT_ADAPT = "bias"
#: learning rate of the per-speaker bias (Adam; its values are pre-activations, where one
#: base speaker's embedding contributes about 0.3 per unit)
DEFAULT_BIAS_LR = 0.002
CKPT_NAME = "enroll_checkpoint.pt"


def extract_speaker(files: Sequence[PathLike], dump: PathLike, name: str, cfg,
                    jobs: int = 1, progress: Optional[bool] = None):
    """Analyse ``files`` into ``<dump>/<name>/<stem>.npz`` (skipping those done).

    Returns
    -------
    feats : dict
        ``{stem: Features}`` of the usable files.
    failed : list of str
        One-line errors of the files left out.
    """
    from joblib import Parallel, delayed
    from tqdm import tqdm

    from .corpus import plan_batch
    from .extract import extract_one, is_done
    from .features import load_features
    from .parallel import worker_count

    out = Path(dump) / name
    out.mkdir(parents=True, exist_ok=True)
    plan_batch(files, out, where="--in")  # two inputs of one name: an error, up front

    def one(f: Path):
        dest = out / f"{f.stem}.npz"
        if is_done(dest, cfg) is None:  # a file made with these settings is kept
            r = extract_one(f, dest, cfg, speaker=name, utt=f.stem)
            for w in r["warnings"]:  # extract_one records them; show them as before
                warnings.warn(w)
            if not r["ok"]:
                return f.stem, VawganError(r["error"])
        try:
            return f.stem, load_features(dest)
        except VawganError as e:
            return f.stem, e

    files = [Path(f) for f in files]
    n = worker_count(jobs, len(files)) if files else 1
    gen = Parallel(n_jobs=n, backend="threading", return_as="generator")(
        delayed(one)(f) for f in files)
    disable = None if progress is None else not progress
    feats, failed = {}, []
    for stem, r in tqdm(gen, total=len(files), desc=f"analyse {name}", unit="file",
                        disable=disable):
        if isinstance(r, VawganError):
            failed.append(str(r))
        else:
            feats[stem] = r
    return feats, failed


def extend_model(base_model, n_new: int = 1, spk_bias: bool = False):
    """A copy of ``base_model`` with ``n_new`` more speakers.

    Every weight is copied; the new rows of the decoder's and the critic's speaker
    embeddings are set to the mean of the existing rows, new rows of the decoder's
    per-speaker bias (``model.spk_bias``) to zeros.

    Parameters
    ----------
    base_model : VAWGAN
    n_new : int
        Speakers added (>= 1).
    spk_bias : bool
        Give the copy the per-speaker bias of the decoder's first hidden layer if the base
        has none (every row zero, so the base speakers decode exactly as before). A base
        that has it keeps it either way.

    Returns
    -------
    VAWGAN
        With ``base_model.n_speakers + n_new`` speakers.
    """
    import torch

    from .model import build_model

    if n_new < 1:
        raise ValueError(f"extend_model: n_new={n_new} must be >= 1")
    n = base_model.n_speakers
    cfg = base_model.cfg
    if spk_bias and not cfg.spk_bias:
        cfg = dataclasses.replace(cfg, spk_bias=True)
    m = build_model(cfg, n + n_new, base_model.n_dims)
    sd = {}
    for k, v in base_model.state_dict().items():
        if k == "decoder.spk_bias.weight":
            v = torch.cat([v, v.new_zeros(n_new, v.shape[1])])
        elif k.endswith("embed.weight"):
            v = torch.cat([v, v.mean(dim=0, keepdim=True).expand(n_new, -1)])
        sd[k] = v.clone()
    if "decoder.spk_bias.weight" not in sd and cfg.spk_bias:
        sd["decoder.spk_bias.weight"] = torch.zeros(n + n_new, cfg.hidden)
    m.load_state_dict(sd)
    return m


def enroll(bundle, name: str, files: Sequence[PathLike], out: PathLike, workdir: PathLike,
           steps: int = DEFAULT_STEPS, lr: float = DEFAULT_LR, batch: int = 256,
           seed: int = 0, replace: bool = False, jobs: int = 1,
           progress: Optional[bool] = None, min_speech: float = MIN_SPEECH_SECONDS,
           adv_steps: int = DEFAULT_ADV_STEPS, adv_weight: Optional[float] = None,
           critic_lr: float = DEFAULT_CRITIC_LR, adapt: str = DEFAULT_ADAPT,
           bias_lr: float = DEFAULT_BIAS_LR) -> Dict[str, Any]:
    """Add speaker ``name`` to ``bundle`` from ``files``; write the new bundle to ``out``.

    Parameters
    ----------
    bundle : Bundle
        The base model (:func:`vawgan.bundle.load_bundle`).
    name : str
        The new speaker; a name the bundle has is refused unless ``replace`` (then its
        embedding row and statistics are learned again from ``files``).
    files : sequence of path
        The speaker's recordings (audio, or dump feature files).
    out : path
        The new bundle (atomic); must not be the base bundle's file.
    workdir : path
        Features, checkpoint and ``enroll.json`` of this enrollment (resumable).
    steps, lr, batch, seed : training of the embedding row (reconstruction phase)
    adv_steps, adv_weight, critic_lr : the adversarial phase that follows (0 steps: none;
        ``adv_weight`` None: :data:`DEFAULT_ADV_WEIGHTS` of ``adapt``)
    adapt : {"row", "bias"}
        What of the decoder is learned for the new speaker, in both phases: its embedding
        row, or the row and its row of the per-speaker bias of the first hidden layer
        (``hidden`` values, learning rate ``bias_lr``). ``"bias"`` writes a bundle with
        ``model.spk_bias`` on (the base speakers' bias rows zero: they convert exactly as
        before); a base bundle that already has it keeps it with ``"row"`` too (the new
        speaker's bias row then stays zero).
    jobs : int
        Parallel analysis threads.
    min_speech : float
        Seconds of non-silent speech needed.

    Returns
    -------
    dict
        ``name``, ``n_files``, ``failed`` (errors of the files left out),
        ``speech_seconds``, ``f0_range`` (proposed search range), ``nll_start`` /
        ``nll_rec`` / ``nll_end`` (reconstruction NLL of the speaker's frames with the
        initial row, after the reconstruction phase and at the end: the adversarial
        phase trades some of it for variance), ``steps`` / ``adv_steps`` (done),
        ``wdist_end`` (the critic's last Wasserstein estimate; NaN without the
        adversarial phase), ``seconds``, ``speakers`` (of the new bundle), ``out``.
        The new bundle's ``train_info["enrolled"]`` keeps the figures of each
        enrollment, ``f0_range`` included.

    Raises
    ------
    InputsError
        Less than ``min_speech`` seconds of speech in the usable files; its
        ``left_out`` lists the files left out (unreadable, silent).
    VawganError
        A name the bundle has (without ``replace``), ``out`` the base bundle's file,
        invalid settings, a checkpoint of another enrollment in ``workdir``.
    """
    import torch
    from tqdm import tqdm

    from .data import Sampler, load_training_data
    from .export import save_bundle
    from .f0 import propose_f0_range
    from .io import same_file
    from .losses import critic_loss, gaussian_nll, generator_adv_loss, reparameterize
    from .stats import compute_speaker_stats
    from .trainstep import decode_units

    if not name or not name.strip() or "/" in name:
        raise VawganError(f"--name {name!r}: give a speaker name (no '/')")
    if adapt not in ADAPT_MODES:
        raise VawganError(f"enroll: adapt={adapt!r}, use one of {', '.join(ADAPT_MODES)}")
    if adv_weight is None:
        adv_weight = DEFAULT_ADV_WEIGHTS[adapt]
    if steps < 1 or batch < 1 or adv_steps < 0 or not all(
            np.isfinite(v) and v > 0 for v in (lr, critic_lr, bias_lr)) or not (
            np.isfinite(adv_weight) and adv_weight >= 0):
        raise VawganError("enroll: steps and batch must be >= 1, adv_steps >= 0 and the "
                          "learning rates positive numbers, adv_weight >= 0")
    if name in bundle.speakers and not replace:
        raise VawganError(f"{bundle.path}: speaker {name} exists in the bundle; pass "
                          f"--replace to enroll it again, or choose another --name")
    out, workdir = Path(out), Path(workdir)
    if out.exists() and same_file(out, bundle.path):
        raise VawganError(f"{out}: is the base bundle; refusing to overwrite it")
    cfg = bundle.config
    t0 = time.perf_counter()
    feats, failed = extract_speaker(files, workdir / "dump", name, cfg.feature, jobs, progress)
    fp = cfg.feature.frame_period / 1000.0
    speech = sum(int(f.nonsilent(cfg.feature.silence_db).sum()) for f in feats.values()) * fp
    if speech < min_speech:
        raise InputsError(
            f"{name}: {speech:.1f} s of speech in {len(feats)} usable file(s) "
            f"({len(failed)} left out); enrollment needs at least {min_speech:g} s "
            f"(about 10 sentences)", failed)
    stats = compute_speaker_stats(list(feats.values()), cfg.feature.silence_db,
                                  cfg.stats.ms_fft, cfg.stats.resynth_utts, cfg.feature)
    voiced = np.concatenate([f.f0[f.f0 > 0] for f in feats.values()])
    f0_range = propose_f0_range(voiced) if len(voiced) >= 10 else None

    utts = [f"{name}/{stem}" for stem in sorted(feats)]
    data = load_training_data(workdir / "dump", {name: stats}, utts,
                              silence_db=cfg.feature.silence_db, feature_config=cfg.feature,
                              progress=False)
    base_speakers = [s for s in bundle.speakers if s != name]
    base = bundle.model
    if replace and name in bundle.speakers:  # drop its row, then add it back as new
        keep = [bundle.speakers.index(s) for s in base_speakers]
        base = _subset_speakers(base, keep)
    model = extend_model(base, spk_bias=adapt == "bias")
    model.eval()
    new = model.n_speakers - 1
    for p in model.parameters():
        p.requires_grad_(False)

    def learn_row(table):  # only the new speaker's row learns
        table.requires_grad_(True)
        mask = torch.zeros_like(table)
        mask[new] = 1.0
        table.register_hook(lambda g: g * mask)
        return table

    w = learn_row(model.decoder.embed.weight)
    groups = [{"params": [w], "lr": lr}]
    bw = None  # the new speaker's per-speaker bias, with --adapt bias
    if adapt == "bias":
        bw = learn_row(model.decoder.spk_bias.weight)
        groups.append({"params": [bw], "lr": bias_lr})
    dec_params = [g["params"][0] for g in groups]
    opt = torch.optim.Adam(groups)
    gen = torch.Generator().manual_seed(seed)
    sampler = Sampler.for_model(data, cfg.model, gen)

    def nll(n_batches: int = 8) -> float:
        g = torch.Generator().manual_seed(seed + 1)  # the same frames before and after
        s = Sampler.for_model(data, cfg.model, g)
        vals = []
        with torch.no_grad():
            for _ in range(n_batches):
                x, _, xin, m = s.vae_batch(batch)
                mu, _ = model.encoder(xin)
                mean, dlv = model.decoder(mu, torch.full(mu.shape[:1], new, dtype=torch.long))
                vals.append(float(gaussian_nll(x, mean, dlv, None, m)))
        return float(np.mean(vals))

    # phase 2 (adversarial): the critic's new row against the speaker's real frames,
    # then the decoder row on reconstruction + the adversarial term, as in training
    tc = cfg.train
    wc = model.critic.embed.weight
    wc.requires_grad_(True)
    cmask = torch.zeros_like(wc)
    cmask[new] = 1.0
    wc.register_hook(lambda g: g * cmask)
    opt_c = torch.optim.Adam([wc], lr=critic_lr, betas=tc.critic_betas_pair())
    n_units = max(1, batch // sampler.unit)
    new_ids = torch.full((n_units,), new, dtype=torch.long)
    total = steps + adv_steps

    def fake_units(src):
        """decode(posterior mean of src, new): what conversion outputs, (n, L, D); the
        frozen encoder builds no graph, the decoder's row gets the gradient."""
        return decode_units(model.encoder, model.decoder, src, new_ids, sampler.segments)

    ckpt = workdir / CKPT_NAME
    step = 0
    nll_start = nll()
    nll_rec = float("nan")  # after the reconstruction phase
    if ckpt.exists():
        st = torch.load(ckpt, map_location="cpu", weights_only=True)
        if (st["name"] != name or st["n_speakers"] != model.n_speakers
                or st.get("adapt", "row") != adapt):
            raise VawganError(f"{ckpt}: a checkpoint of another enrollment (speaker "
                              f"{st['name']}, adapt {st.get('adapt', 'row')}); use another "
                              f"workdir or remove it")
        if "utts" in st and list(st["utts"]) != utts:  # its row was learned from others
            raise VawganError(f"{ckpt}: a checkpoint of another set of recordings "
                              f"({len(st['utts'])} file(s), now {len(utts)}); remove it to "
                              f"enroll {name} from these, or use another --workdir")
        with torch.no_grad():
            w[new] = st["row"]
            if bw is not None:
                bw[new] = st["bias_row"]
            if "critic_row" in st:
                wc[new] = st["critic_row"]
        opt.load_state_dict(st["opt"])
        if "opt_c" in st:
            opt_c.load_state_dict(st["opt_c"])
        gen.set_state(st["gen"])
        step, nll_start = int(st["step"]), float(st["nll_start"])
        nll_rec = float(st.get("nll_rec", float("nan")))
    bar = tqdm(total=total, initial=step, desc=f"enroll {name}", unit="step",
               disable=None if progress is None else not progress)
    wdist = float("nan")
    try:
        while step < total:
            x, _, xin, m = sampler.vae_batch(batch)
            with torch.no_grad():
                mu, lv = model.encoder(xin)
                z = reparameterize(mu, lv, gen)
            mean, dlv = model.decoder(z, torch.full(z.shape[:1], new, dtype=torch.long))
            loss = gaussian_nll(x, mean, dlv, None, m)
            if step >= steps:  # adversarial phase
                for _ in range(tc.n_critic):
                    real, _, src = sampler.adversarial(n_units)
                    with torch.no_grad():
                        fake = fake_units(src)
                    closs, wd, _ = critic_loss(model.critic, real, fake, new_ids,
                                               tc.gp_lambda, gen)
                    opt_c.zero_grad(set_to_none=True)
                    closs.backward(inputs=[wc])
                    opt_c.step()
                wdist = float(wd)
                src = sampler.adversarial(n_units)[2]
                adv = generator_adv_loss(model.critic, fake_units(src), new_ids)
                loss = loss + adv_weight * adv
            opt.zero_grad(set_to_none=True)
            loss.backward(inputs=dec_params)
            opt.step()
            step += 1
            bar.update(1)
            if step == steps:
                nll_rec = nll()
            if step % 100 == 0:
                post = {"nll": f"{float(loss.detach()):.3g}"}
                if step > steps:
                    post["wdist"] = f"{wdist:.3g}"
                bar.set_postfix(post, refresh=False)
            if step % 500 == 0 or step == steps or step == total:
                if not all(torch.isfinite(t[new]).all() for t in dec_params + [wc]):
                    raise VawganError(f"enroll {name}: the embedding diverged at step {step}; "
                                      f"lower --lr")
                _save_ckpt(ckpt, {"name": name, "n_speakers": model.n_speakers, "utts": utts,
                                  "row": w[new].detach().clone(), "adapt": adapt,
                                  "bias_row": (None if bw is None
                                               else bw[new].detach().clone()),
                                  "critic_row": wc[new].detach().clone(),
                                  "opt": opt.state_dict(), "opt_c": opt_c.state_dict(),
                                  "gen": gen.get_state(), "step": step,
                                  "nll_start": nll_start, "nll_rec": nll_rec})
    finally:
        bar.close()
    for t in dec_params + [wc]:
        t.requires_grad_(False)
    nll_end = nll()
    all_stats = {s: bundle.stats[s].to_dict() for s in base_speakers}
    all_stats[name] = stats.to_dict()
    info = {"name": name, "n_files": len(feats), "failed": failed,
            "speech_seconds": round(speech, 2), "adapt": adapt, "adv_weight": adv_weight,
            "f0_range": list(f0_range) if f0_range else None,
            "nll_start": nll_start, "nll_rec": nll_rec, "nll_end": nll_end,
            "steps": min(step, steps),
            "adv_steps": step - min(step, steps), "wdist_end": wdist,
            "seconds": round(time.perf_counter() - t0, 2),
            "speakers": base_speakers + [name], "out": str(out),
            "base": str(bundle.path)}
    train_info = dict(bundle.train_info)
    train_info["enrolled"] = list(train_info.get("enrolled", [])) + [
        {k: info[k] for k in ("name", "n_files", "speech_seconds", "adapt", "adv_weight",
                              "f0_range", "steps",
                              "adv_steps", "nll_start", "nll_rec", "nll_end")}]
    cfg = dataclasses.replace(cfg, model=model.cfg)  # model.spk_bias on with --adapt bias
    save_bundle(out, model=model, config=cfg, speakers=base_speakers + [name],
                stats=all_stats, kind=bundle.kind, train_info=train_info)
    atomic_write_text(workdir / "enroll.json", json.dumps(info, indent=1))
    return info


def _subset_speakers(model, keep: List[int]):
    """A copy of ``model`` with only the speakers ``keep`` (in that order)."""
    from .model import build_model

    from .model import SPEAKER_TABLES

    m = build_model(model.cfg, len(keep), model.n_dims)
    sd = {k: (v[keep].clone() if k in SPEAKER_TABLES else v.clone())
          for k, v in model.state_dict().items()}
    m.load_state_dict(sd)
    return m


def _save_ckpt(path: Path, state: Dict[str, Any]) -> None:
    import torch

    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(state, tmp)
