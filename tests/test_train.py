"""Trainer: each phase updates exactly the right parameters, learning, exact resume, CLI."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
import yaml

from vawgan.config import Config
from vawgan.errors import ConfigError
from vawgan.corpus import read_utt_list
from vawgan.data import Sampler, load_training_data, make_synthetic_dump
from vawgan.errors import CheckpointError, CorpusError, FeatureError
from vawgan.train import Trainer
from vawgan.trainstep import StepRunner

TINY = {"model": {"context": 0, "hidden": 24, "n_layers": 2, "z_dim": 6, "spk_dim": 4, "critic_hidden": 24,
                  "critic_layers": 2, "segment": 8},
        "train": {"batch_size": 32, "vae_steps": 12, "critic_steps": 4, "gan_steps": 6,
                  "n_critic": 2, "log_every": 3, "ckpt_every": 5, "threads": 1}}


def tiny_cfg(**over) -> Config:
    d = copy.deepcopy(TINY)
    for sec, vals in over.items():
        d[sec].update(vals)
    return Config.from_dict(d)


def _resumed(cfg, data, path, stop: int) -> Trainer:
    """A run stopped after ``stop`` steps, resumed from its checkpoint and finished."""
    first = Trainer(cfg, data, path, progress=False)
    first.fit(max_steps=stop)
    resumed = Trainer(cfg, data, path, progress=False)
    resumed.load_checkpoint()
    resumed.fit()
    return resumed


def _assert_same_weights(a, b) -> None:
    for (k, x), y in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(x, y), k


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    root = tmp_path_factory.mktemp("dump")
    utts, stats = make_synthetic_dump(root, n_utts=3, n_frames=80)
    return root, utts, stats


@pytest.fixture
def data(dump):
    root, utts, stats = dump
    return load_training_data(root, stats, utts, progress=False)


def params(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def changed(before, module):
    return {k for k, v in module.named_parameters() if not torch.equal(before[k], v)}


def runner_for(cfg, data, seed=0):
    torch.manual_seed(seed)
    from vawgan.model import build_model

    model = build_model(cfg.model, data.n_speakers)
    return StepRunner(model, cfg, Sampler(data, cfg.model.unit_length(),
                                          torch.Generator().manual_seed(seed),
                                          context=cfg.model.sampler_context(),
                                          segments=cfg.model.arch == "conv"))


# ---------------------------------------------------------------------- data
def test_data_loading_masks_silence_and_normalizes(dump, data):
    root, utts, stats = dump
    assert data.speakers == ["A", "B", "C"]
    # silent frames stay (true neighbours for windows and segments), masked out
    assert data.n_frames == 9 * 80 and data.n_speech == 9 * 60  # 10 + 10 silent per utt
    assert data.keep.dtype == torch.bool
    assert not data.keep[:10].any() and data.keep[10:70].all() and not data.keep[70:80].any()
    assert data.frames.dtype == torch.float32 and data.n_dims == 39
    for k, s in enumerate(data.speakers):
        sl = slice(data.spk_start[k], data.spk_start[k] + data.spk_count[k])
        rows = data.frames[sl][data.keep[sl]].double()
        assert torch.all(data.spk[data.spk_start[k]: data.spk_start[k] + data.spk_count[k]] == k)
        assert np.allclose(rows.mean(0).numpy(), 0, atol=1e-5)  # z-scored with its own stats
        assert np.allclose(rows.std(0, unbiased=False).numpy(), 1, atol=1e-4)


def test_unit_starts_stay_inside_utterances(data):
    starts, start, count = data.unit_starts(8)
    # 80-frame utterances, speech at frames 10..69: centres s + 4 in 10..69 -> s in 6..65
    assert len(starts) == 9 * 60
    ends = data.utt_start + data.utt_len
    for s in starts:
        u = np.searchsorted(data.utt_start, s, side="right") - 1
        assert s + 8 <= ends[u]
        assert bool(data.keep[s + 4])  # the centre frame is speech


def test_sampler_other_speaker(data):
    s = Sampler(data, 8, torch.Generator().manual_seed(0))
    real, spk, src = s.adversarial(500)
    assert real.shape == (500, 8, 39) and src.shape == (500, 8, 39)
    # each source segment is a segment of a speaker other than the target
    rows = {tuple(np.round(data.frames[i].numpy(), 5)): int(data.spk[i]) for i in range(data.n_frames)}
    src_spk = torch.tensor([rows[tuple(np.round(x[0].numpy(), 5))] for x in src])
    assert torch.all(src_spk != spk)
    assert set(src_spk.tolist()) == {0, 1, 2}


def test_utt_list_and_errors(tmp_path, dump):
    root, utts, stats = dump
    f = tmp_path / "train.list"
    f.write_text("# comment\nA/100001\n\nB/100002.npz\n")
    assert read_utt_list(f) == [("A", "100001"), ("B", "100002")]
    with pytest.raises(CorpusError, match="line 1"):  # the one list reader (vawgan.corpus)
        read_utt_list(["A-100001"])
    with pytest.raises(FeatureError, match="no speaker C"):
        load_training_data(root, {k: stats[k] for k in "AB"}, utts, progress=False)
    with pytest.raises(FeatureError, match="100009"):
        load_training_data(root, stats, ["A/100009"], progress=False)
    with pytest.raises(FeatureError, match="at least 500"):
        Sampler(load_training_data(root, stats, utts, progress=False), 500, torch.Generator())


def test_stats_as_pairs_and_json(tmp_path, dump):
    root, utts, stats = dump
    pairs = {k: (v["mcep_mean"], v["mcep_std"]) for k, v in stats.items()}
    a = load_training_data(root, pairs, utts, progress=False)
    b = load_training_data(root, stats, utts, progress=False)
    assert torch.equal(a.frames, b.frames)


# ---------------------------------------------------------------------- phases
def test_vae_step_updates_encoder_and_decoder_only(data):
    r = runner_for(tiny_cfg(), data)
    m = r.model
    before = {n: params(getattr(m, n)) for n in ("encoder", "decoder", "critic")}
    out = r.vae_step()
    assert changed(before["encoder"], m.encoder) == set(before["encoder"])
    assert changed(before["decoder"], m.decoder) == set(before["decoder"])
    assert changed(before["critic"], m.critic) == set()
    for k in ("rec", "kl", "mu_abs", "sigma", "active"):
        assert torch.isfinite(out[k])


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_critic_warmup_freezes_vae(data, arch):
    r = runner_for(tiny_cfg(model={"critic_arch": arch}), data)
    m = r.model
    before = {n: params(getattr(m, n)) for n in ("encoder", "decoder", "critic")}
    out = r.critic_steps(3)
    assert changed(before["encoder"], m.encoder) == set()
    assert changed(before["decoder"], m.decoder) == set()
    assert changed(before["critic"], m.critic) == set(before["critic"])
    assert torch.isfinite(out["wdist"]) and out["gp"] > 0


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_adversarial_loss_never_reaches_encoder(data, arch):
    """Same state and same random draws, adversarial weight 0 vs 50: after a phase-3 step
    the encoders are bitwise equal, the decoders differ, the critics are equal."""
    cfg0 = tiny_cfg(model={"critic_arch": arch}, train={"adv_weight": 0.0})
    cfg1 = tiny_cfg(model={"critic_arch": arch}, train={"adv_weight": 50.0})
    r0, r1 = runner_for(cfg0, data), runner_for(cfg1, data)
    r0.gan_step()
    r1.gan_step()
    m0, m1 = r0.model, r1.model
    for (k, a), b in zip(m0.encoder.state_dict().items(), m1.encoder.state_dict().values()):
        assert torch.equal(a, b), k
    for a, b in zip(m0.critic.state_dict().values(), m1.critic.state_dict().values()):
        assert torch.equal(a, b)
    # the gradients of the generator step are still in .grad: equal for the encoder,
    # different for every decoder weight incl. the speaker embedding
    for (k, a), b in zip(m0.encoder.named_parameters(), m1.encoder.parameters()):
        assert torch.equal(a.grad, b.grad), k
    for (k, a), b in zip(m0.decoder.named_parameters(), m1.decoder.parameters()):
        if k != "logvar":  # the adversarial branch uses the mean only
            assert not torch.allclose(a.grad, b.grad), k
    assert torch.equal(m0.decoder.logvar.grad, m1.decoder.logvar.grad)


def test_gan_step_updates_all_three(data):
    r = runner_for(tiny_cfg(), data)
    m = r.model
    before = {n: params(getattr(m, n)) for n in ("encoder", "decoder", "critic")}
    out = r.gan_step()
    for n in ("encoder", "decoder", "critic"):
        assert changed(before[n], getattr(m, n)) == set(before[n]), n
    for k in ("rec", "kl", "wdist", "gp", "adv", "adv_w"):
        assert torch.isfinite(out[k]), k


def test_adaptive_weight_is_loss_ratio(data):
    r = runner_for(tiny_cfg(train={"adv_balance": "adaptive", "adv_weight": 2.0,
                                   "adv_balance_every": 3}), data)
    out = r.gan_step()  # first step: adv_weight, then estimated from its magnitudes
    assert out["adv_w"].item() == 2.0
    want = 2.0 * out["rec"].abs() / out["adv"].abs()
    outs = [r.gan_step() for _ in range(4)]
    assert torch.allclose(outs[0]["adv_w"], want, rtol=1e-5)
    assert torch.equal(outs[1]["adv_w"], outs[0]["adv_w"])  # held for 3 steps
    assert torch.equal(outs[2]["adv_w"], outs[0]["adv_w"])
    want = 2.0 * sum(o["rec"].abs() for o in outs[:3]) / sum(o["adv"].abs() for o in outs[:3])
    assert torch.allclose(outs[3]["adv_w"], want, rtol=1e-5)  # mean over the last 3 steps


def test_vae_learns_on_synthetic_data(data):
    cfg = tiny_cfg(model={"hidden": 64, "z_dim": 8}, train={"batch_size": 128})
    r = runner_for(cfg, data)
    first = [r.vae_step()["rec"].item() for _ in range(5)]
    for _ in range(300):
        r.vae_step()
    last = [r.vae_step()["rec"].item() for _ in range(5)]
    # reconstruction NLL (nats per frame, 39 dims) drops by a lot, latent dims become active
    assert np.mean(last) < np.mean(first) - 15
    assert r.vae_step()["active"].item() >= 4


# ---------------------------------------------------------------------- loop, resume
def _history(outdir):
    lines = (outdir / "history.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k not in ("time", "frames_per_s")}
            for x in lines]


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_resume_after_kill_equals_uninterrupted(tmp_path, data, arch):
    cfg = tiny_cfg(model={"critic_arch": arch}, train={"adv_balance": "adaptive",
                                                       "adv_balance_every": 2})
    a = Trainer(cfg, data, tmp_path / "a", progress=False)
    a.fit()
    assert a.step == 22 and (tmp_path / "a" / "vae.pt").exists()
    assert (tmp_path / "a" / "vawgan.pt").exists()

    class Killed(Exception):
        pass

    b = Trainer(cfg, data, tmp_path / "b", progress=False)
    orig = b.train_step

    def dying():
        if b.step == 19:  # in phase 3, 3 steps after the checkpoint at the phase-3 start
            raise Killed
        return orig()

    b.train_step = dying
    with pytest.raises(Killed):
        b.fit()
    c = Trainer(cfg, data, tmp_path / "b", progress=False)
    c.load_checkpoint()
    assert c.step == 16 and c.phase() == 3
    c.fit()
    for (k, x), y in zip(a.model.state_dict().items(), c.model.state_dict().values()):
        assert torch.equal(x, y), k
    sa, sc = a.runner.state_dict(), c.runner.state_dict()
    assert torch.equal(sa["gen"], sc["gen"])
    for name in ("opt_enc", "opt_dec", "opt_critic"):
        for st_a, st_c in zip(sa[name]["state"].values(), sc[name]["state"].values()):
            assert all(torch.equal(st_a[k], st_c[k]) for k in st_a)
    assert _history(tmp_path / "a") == _history(tmp_path / "b")
    assert [h["step"] for h in _history(tmp_path / "a")] == [3, 6, 9, 12, 15, 16, 18, 21, 22]


def test_history_and_phases(tmp_path, data):
    t = Trainer(tiny_cfg(), data, tmp_path, progress=False)
    t.fit()
    h = _history(tmp_path)
    assert {x["phase"] for x in h} == {1, 2, 3}
    p1 = [x for x in h if x["phase"] == 1]
    assert all("wdist" not in x and "active" in x for x in p1)
    p3 = [x for x in h if x["phase"] == 3]
    assert all(k in p3[-1] for k in ("rec", "kl", "wdist", "gp", "adv", "mu_abs", "sigma", "active"))
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["train"]["vae_steps"] == 12


def test_checkpoint_mismatch_rejected(tmp_path, data):
    t = Trainer(tiny_cfg(), data, tmp_path, progress=False)
    t.fit(max_steps=5)
    other = Trainer(tiny_cfg(model={"hidden": 16}), data, tmp_path, progress=False)
    with pytest.raises(CheckpointError, match="model config differs"):
        other.load_checkpoint()
    (tmp_path / "checkpoint.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        t.load_checkpoint()


def test_cli_train_and_resume(tmp_path, dump, capsys):
    from vawgan.bundle import load_bundle
    from vawgan.cli import main

    vstats = pytest.importorskip("vawgan.stats")
    from vawgan.features import load_features

    root, utts, _ = dump
    sj = tmp_path / "stats.json"
    per = {}
    for u in utts:
        per.setdefault(u.split("/")[0], []).append(load_features(root / f"{u}.npz"))
    vstats.save_stats(sj, {k: vstats.compute_speaker_stats(v) for k, v in per.items()})
    ul = tmp_path / "train.list"
    ul.write_text("\n".join(utts) + "\n")
    conf = tmp_path / "conf.yaml"
    conf.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "exp"
    argv = ["train", "--dump", str(root), "--stats", str(sj), "--utts-file", str(ul),
            "--config", str(conf), "--outdir", str(out), "--device", "cpu", "--no-progress"]
    assert main(argv) == 0
    b = load_bundle(out / "vawgan.pt")
    assert b.kind == "vawgan" and b.speakers == ["A", "B", "C"]
    assert load_bundle(out / "vae.pt").kind == "vae"
    assert main(argv) == 1  # a run exists: refuses without --resume
    assert "--resume" in capsys.readouterr().err
    assert main(argv + ["--resume"]) == 0
    assert "already finished" in capsys.readouterr().out


# ---------------------------------------------------------------------- CUDA
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("balance", ["fixed", "adaptive"])
def test_cuda_graph_matches_eager(tmp_path, dump, balance):
    """The CUDA-graph trainer follows the same schedule and reaches the same weights as
    the eager CUDA trainer (fp32, same seeds), and resumes."""
    root, utts, stats = dump
    data = load_training_data(root, stats, utts, progress=False, device="cuda")
    models = {}
    for graph in (False, True):
        cfg = tiny_cfg(train={"cuda_graph": graph, "precision": "fp32", "adv_balance": balance})
        t = Trainer(cfg, data, tmp_path / str(graph), device="cuda", progress=False)
        t.fit()
        assert t.step == 22
        if graph:
            assert not t.graphed.failed and 3 in t.graphed.graphs
        assert all(np.isfinite(x["rec"]) for x in _history(tmp_path / str(graph)) if "rec" in x)
        models[graph] = t.model.state_dict()
    for k, v in models[False].items():
        assert torch.allclose(v, models[True][k], atol=1e-3, rtol=1e-3), k
    # resume in the middle of phase 3 with graphs
    cfg = tiny_cfg(train={"cuda_graph": True, "precision": "fp32", "adv_balance": balance})
    t = Trainer(cfg, data, tmp_path / "r", device="cuda", progress=False)
    t.fit(max_steps=18)
    t2 = Trainer(cfg, data, tmp_path / "r", device="cuda", progress=False)
    t2.load_checkpoint()
    t2.fit()
    for k, v in models[True].items():
        assert torch.allclose(v, t2.model.state_dict()[k], atol=1e-3, rtol=1e-3), k


def test_init_from_vae_skips_phase1(tmp_path, data):
    vae_cfg = tiny_cfg(train={"critic_steps": 0, "gan_steps": 0})
    t1 = Trainer(vae_cfg, data, tmp_path / "vae", progress=False)
    t1.fit()
    assert (tmp_path / "vae" / "vae.pt").exists()
    # a conv-critic GAN run starts from those encoder/decoder weights at phase 2
    cfg = tiny_cfg(model={"critic_arch": "conv"})
    t2 = Trainer(cfg, data, tmp_path / "gan", progress=False)
    t2.init_from_vae(tmp_path / "vae" / "vae.pt")
    assert t2.step == t2.p1 and t2.phase() == 2
    for k, v in t1.model.state_dict().items():
        if k.startswith(("encoder.", "decoder.")):
            assert torch.equal(v, t2.model.state_dict()[k]), k
    t2.fit()
    assert t2.step == t2.total and (tmp_path / "gan" / "vawgan.pt").exists()
    # a different encoder/decoder shape is refused
    t3 = Trainer(tiny_cfg(model={"z_dim": 5}), data, tmp_path / "bad", progress=False)
    with pytest.raises(CheckpointError, match="z_dim"):
        t3.init_from_vae(tmp_path / "vae" / "vae.pt")


# ---------------------------------------------------------------------- model.context
def _tiny_data():
    """Two utterances (3 and 4 frames) of speaker 0, one (5 frames) of speaker 1; D = 2,
    frame values = row index (and row index + 100)."""
    from vawgan.data import TrainingData

    rows = torch.arange(12, dtype=torch.float32)
    return TrainingData(frames=torch.stack([rows, rows + 100], 1),
                        spk=torch.tensor([0] * 7 + [1] * 5), speakers=["A", "B"],
                        spk_start=np.array([0, 7]), spk_count=np.array([7, 5]),
                        utt_start=np.array([0, 3, 7]), utt_len=np.array([3, 4, 5]),
                        utt_spk=np.array([0, 0, 1]))


def test_context_windows_clamp_at_utterance_edges():
    d = _tiny_data()
    first, last = d.frame_bounds()
    assert first.tolist() == [0, 0, 0, 3, 3, 3, 3, 7, 7, 7, 7, 7]
    assert last.tolist() == [2, 2, 2, 6, 6, 6, 6, 11, 11, 11, 11, 11]
    s = Sampler(d, 1, torch.Generator().manual_seed(0), context=2)
    w = s.windows(torch.tensor([0, 2, 3, 4, 6, 7, 9, 11]))
    assert w.shape == (8, 10)
    got = w.reshape(8, 5, 2)
    assert got[..., 0].long().tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 2, 2],   # utt 0
                                           [3, 3, 3, 4, 5], [3, 3, 4, 5, 6], [4, 5, 6, 6, 6],
                                           [7, 7, 7, 8, 9], [7, 8, 9, 10, 11],  # utt 2
                                           [9, 10, 11, 11, 11]]
    assert torch.equal(got[..., 1], got[..., 0] + 100)
    # any leading shape: segments of L frames -> (n, L, (2k+1) D)
    assert s.windows(torch.tensor([[3, 4], [5, 6]])).shape == (2, 2, 10)


def test_context_sampler_draws(data):
    """Context changes what the encoder is given, not which frames/units are drawn."""
    ref = Sampler(data, 8, torch.Generator().manual_seed(3))
    s0 = Sampler(data, 8, torch.Generator().manual_seed(3))
    s2 = Sampler(data, 8, torch.Generator().manual_seed(3), context=2)
    x, spk = ref.frames(64)
    x0, spk0, in0, m0 = s0.vae_batch(64)
    x2, spk2, in2, m2 = s2.vae_batch(64)
    assert m0 is None and m2 is None
    assert bool(data.keep[s0.rows].all())  # only non-silent frames are drawn
    assert torch.equal(x, x0) and in0 is x0 and torch.equal(spk, spk0)
    assert torch.equal(x, x2) and torch.equal(spk, spk2)
    assert in2.shape == (64, 5 * 39)
    assert torch.equal(in2[:, 2 * 39:3 * 39], x2)  # the centre of each window is the frame
    real, spk, src = ref.adversarial(40)
    real2, spk2, src2 = s2.adversarial(40)
    assert torch.equal(real, real2) and torch.equal(spk, spk2)
    assert src.shape == (40, 8, 39) and src2.shape == (40, 8, 5 * 39)
    assert torch.equal(src2[..., 2 * 39:3 * 39], src)
    assert torch.equal(ref.gen.get_state(), s2.gen.get_state())
    with pytest.raises(ValueError, match="context"):
        Sampler(data, 1, torch.Generator(), context=-1)


def test_context_windows_see_silent_neighbours():
    """Windows run over the true neighbours (silence included), as conversion does;
    only non-silent frames are drawn as centres."""
    d = _tiny_data()
    d.keep = torch.tensor([False, True, True, True, True, True, False] + [True] * 5)
    s = Sampler(d, 1, torch.Generator().manual_seed(0), context=2)
    w = s.windows(torch.tensor([1, 5]))
    assert w.reshape(2, 5, 2)[..., 0].long().tolist() == [[0, 0, 1, 2, 2], [3, 4, 5, 6, 6]]
    _, _, _, mask = s.vae_batch(200)
    assert mask is None
    drawn = s._rows(500)
    assert set(drawn.tolist()) == {1, 2, 3, 4, 5, 7, 8, 9, 10, 11}  # never rows 0 and 6


def test_segment_batches_carry_the_speech_mask(data):
    s = Sampler(data, 16, torch.Generator().manual_seed(0), segments=True)
    x, spk, xin, mask = s.vae_batch(256)
    assert x.shape == (16, 16, 39) and xin is x and spk.shape == (16,)
    assert mask.shape == (16, 16) and mask.dtype == torch.bool
    assert bool(mask[:, 8].all())  # centres are speech
    assert 0 < int(mask.sum()) <= 256
    # the mask is the data's own, row by row
    rows = s._unit_rows(torch.arange(s.n_units))
    assert torch.equal(data.keep[rows][:, 8], torch.ones(s.n_units, dtype=torch.bool))


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_context_training_all_phases(tmp_path, data, arch):
    from vawgan.bundle import load_bundle

    cfg = tiny_cfg(model={"context": 2, "critic_arch": arch})
    t = Trainer(cfg, data, tmp_path, progress=False)
    assert t.model.encoder.net[0].in_features == 5 * 39
    t.fit()
    assert t.step == t.total
    h = _history(tmp_path)
    assert {x["phase"] for x in h} == {1, 2, 3}
    assert all(np.isfinite(x["rec"]) for x in h if "rec" in x)
    assert all(np.isfinite(x["wdist"]) for x in h if "wdist" in x)
    for kind in ("vae", "vawgan"):
        b = load_bundle(tmp_path / f"{kind}.pt")
        assert b.config.model.context == 2
        assert b.state_dict["encoder.net.0.weight"].shape == (24, 5 * 39)
    if arch == "conv":  # exact resume with context too
        r = Trainer(cfg, data, tmp_path / "r", progress=False)
        r.fit(max_steps=18)
        r2 = Trainer(cfg, data, tmp_path / "r", progress=False)
        r2.load_checkpoint()
        assert r2.step == 18 and r2.phase() == 3
        r2.fit()
        for (k, x), y in zip(t.model.state_dict().items(), r2.model.state_dict().values()):
            assert torch.equal(x, y), k


def test_context_init_vae_and_checkpoints_must_match(tmp_path, data):
    vae_cfg = tiny_cfg(train={"critic_steps": 0, "gan_steps": 0})
    Trainer(vae_cfg, data, tmp_path / "vae", progress=False).fit()
    t = Trainer(tiny_cfg(model={"context": 1}), data, tmp_path / "gan", progress=False)
    with pytest.raises(CheckpointError, match="context"):
        t.init_from_vae(tmp_path / "vae" / "vae.pt")
    a = Trainer(tiny_cfg(), data, tmp_path / "old", progress=False)
    a.fit(max_steps=5)
    b = Trainer(tiny_cfg(), data, tmp_path / "old", progress=False)
    b.load_checkpoint()
    assert b.step == 5
    c = Trainer(tiny_cfg(model={"context": 1}), data, tmp_path / "old", progress=False)
    with pytest.raises(CheckpointError, match="model config differs"):
        c.load_checkpoint()


# ---------------------------------------------------------------------- model.arch conv
@pytest.mark.parametrize("critic", ["mlp", "conv"])
def test_conv_arch_trains_all_phases_and_resumes_exactly(tmp_path, data, critic):
    """The temporal encoder/decoder: segments in every phase, bundles that convert as
    the torch model does, exact resume."""
    from vawgan.bundle import load_bundle

    cfg = tiny_cfg(model={"arch": "conv", "context": 2, "critic_arch": critic})
    t = Trainer(cfg, data, tmp_path, progress=False)
    assert t.sampler.segments and t.sampler.context == 0 and t.sampler.unit == 8
    enc0, dec0 = params(t.model.encoder), params(t.model.decoder)
    t.fit()
    assert t.step == t.total
    assert changed(enc0, t.model.encoder) and changed(dec0, t.model.decoder)
    h = _history(tmp_path)
    assert {x["phase"] for x in h} == {1, 2, 3}
    assert all(np.isfinite(x["rec"]) for x in h if "rec" in x)
    b = load_bundle(tmp_path / "vawgan.pt")
    assert b.config.model.arch == "conv"
    x = data.frames[:50]
    ref = t.model.convert(x, torch.tensor(1)).numpy()
    assert np.allclose(b.run_graph(x.numpy(), 1), ref, atol=1e-5)
    # the ONNX graph has a dynamic frame count: another length converts too
    assert b.run_graph(data.frames[:17].numpy(), 0).shape == (17, 39)
    r2 = _resumed(cfg, data, tmp_path / "r", 18)
    _assert_same_weights(t, r2)


def test_adversarial_branch_decodes_the_posterior_mean(data):
    """adv_input "mean": the critic's fakes are decode(mu(x)), exactly what conversion
    outputs; "sample" draws z ~ q(z|x)."""
    for arch in ("mlp", "conv"):
        cfg = tiny_cfg(model={"arch": arch, "context": 1}, train={"precision": "fp32"})
        r = runner_for(cfg, data)
        src = r.sampler.units_not_of(torch.tensor([0, 1, 2]))
        fake = r._fake(src, torch.tensor([1, 2, 0]))
        if arch == "mlp":
            n, L, Din = src.shape
            mu, _ = r.model.encoder(src.reshape(n * L, Din))
            want = r.model.decoder(mu, torch.tensor([1, 2, 0]).repeat_interleave(L))[0]
            want = want.reshape(n, L, -1)
        else:
            mu, _ = r.model.encoder(src)
            want = r.model.decoder(mu, torch.tensor([1, 2, 0]))[0]
        assert torch.allclose(fake, want, atol=1e-6)
        r_s = runner_for(tiny_cfg(model={"arch": arch, "context": 1},
                                  train={"adv_input": "sample", "precision": "fp32"}), data)
        assert not torch.allclose(r_s._fake(src, torch.tensor([1, 2, 0])), want, atol=1e-3)


def test_rec_weight_mcd_weights_low_orders():
    from vawgan.losses import gaussian_nll
    from vawgan.trainstep import rec_weights

    class D:
        stats = {"A": (np.zeros(39), np.linspace(2.0, 0.1, 39)),
                 "B": (np.zeros(39), np.linspace(1.0, 0.1, 39))}

    w = rec_weights("mcd", D, "cpu")
    assert w.shape == (39,) and abs(float(w.mean()) - 1) < 1e-6
    assert float(w[0]) > float(w[23]) > float(w[24]) and torch.allclose(w[24:], w[24].expand(15))
    assert rec_weights("uniform", D, "cpu") is None
    x, m = torch.randn(7, 39), torch.randn(7, 39)
    lv = torch.zeros(39)
    assert torch.allclose(gaussian_nll(x, m, lv, torch.ones(39)), gaussian_nll(x, m, lv))
    # the mask averages over its frames only
    mask = torch.tensor([True, False, True, True, False, False, True])
    assert torch.allclose(gaussian_nll(x, m, lv, mask=mask), gaussian_nll(x[mask], m[mask], lv))


def test_cosine_schedule_decays_phase1_to_the_phase3_rate(tmp_path, data):
    cfg = tiny_cfg(train={"lr_schedule": "cosine", "lr_enc": 1e-3, "lr_dec": 2e-3,
                          "lr_gan_scale": 0.1})
    r = runner_for(cfg, data)
    lrs = []
    for step in (0, 6, 12):
        r.set_phase_lr(1, step, 12)
        lrs.append((r.opt_enc.param_groups[0]["lr"], r.opt_dec.param_groups[0]["lr"]))
    assert lrs[0] == pytest.approx((1e-3, 2e-3))
    assert lrs[1] == pytest.approx((0.55e-3, 1.1e-3))
    assert lrs[2] == pytest.approx((1e-4, 2e-4))
    # resume mid phase 1 is exact (the rate is a function of the step)
    t = Trainer(cfg, data, tmp_path / "a", progress=False)
    t.fit()
    r2 = _resumed(cfg, data, tmp_path / "b", 5)
    _assert_same_weights(t, r2)


def test_speaker_adversarial_classifier_learns_and_resumes(tmp_path, data):
    cfg = tiny_cfg(train={"spk_adv_weight": 1.0, "vae_steps": 40, "gan_steps": 4})
    t = Trainer(cfg, data, tmp_path / "a", progress=False)
    assert t.runner.spk_cls is not None
    assert not any(k.startswith("spk") for k in t.model.state_dict())  # not in the bundle
    t.fit()
    h = [x for x in _history(tmp_path / "a") if "spk_acc" in x]
    assert h and all(0.0 <= x["spk_acc"] <= 1.0 for x in h)
    assert {x["phase"] for x in h} == {1, 3}
    r2 = _resumed(cfg, data, tmp_path / "b", 20)
    _assert_same_weights(t, r2)
    for a, c in zip(t.runner.spk_cls.parameters(), r2.runner.spk_cls.parameters()):
        assert torch.equal(a, c)


# ---------------------------------------------------------------------- precision
def test_precision_auto_follows_cpu_flags(tmp_path, monkeypatch):
    """"auto" takes bf16 only where the CPU has native bf16 instructions: oneDNN's check
    is True on Ice Lake, which only emulates bf16 (2x slower steps)."""
    from vawgan import precision as P

    ice_lake = tmp_path / "icelake"
    ice_lake.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512bw avx512_vnni\n")
    sapphire = tmp_path / "spr"
    sapphire.write_text("flags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile\n")
    graviton = tmp_path / "arm"
    graviton.write_text("Features\t: fp asimd sve bf16 i8mm\n")
    assert P.cpu_bf16_from_flags(P.cpu_flags(str(ice_lake)), "x86_64") is False
    assert P.cpu_bf16_from_flags(P.cpu_flags(str(sapphire)), "x86_64") is True
    assert P.cpu_bf16_from_flags(P.cpu_flags(str(graviton)), "aarch64") is True
    assert P.cpu_bf16_from_flags(P.cpu_flags(str(ice_lake)), "aarch64") is False
    assert P.cpu_flags(str(tmp_path / "missing")) is None
    assert P.cpu_bf16_from_flags(None) is None
    # resolve on an "Ice Lake" (oneDNN says yes, flags say no)
    flags = P.cpu_flags(str(ice_lake))
    monkeypatch.setattr(P, "cpu_flags", lambda path="/proc/cpuinfo": flags)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    monkeypatch.setattr(P.platform, "machine", lambda: "x86_64")
    P.cpu_bf16_native.cache_clear()
    try:
        prec, why = P.resolve_precision_why("auto", "cpu")
        assert prec == "fp32" and "absent" in why
        assert P.resolve_precision("bf16", "cpu") == "bf16"
        assert P.resolve_precision("fp32", "cpu") == "fp32"
        # flags unreadable: decided by timing both precisions (either answer, a reason)
        monkeypatch.setattr(P, "cpu_flags", lambda path="/proc/cpuinfo": None)
        P.cpu_bf16_native.cache_clear()
        prec, why = P.resolve_precision_why("auto", "cpu")
        assert prec in ("bf16", "fp32") and why.startswith("timed: bf16")
    finally:
        P.cpu_bf16_native.cache_clear()
    with pytest.raises(ValueError, match="precision"):
        P.resolve_precision("fp16", "cpu")


def test_bundle_records_precision_and_reason(tmp_path, data):
    t = Trainer(tiny_cfg(train={"precision": "fp32"}), data, tmp_path, progress=False)
    t.fit()
    from vawgan.bundle import load_bundle

    b = load_bundle(tmp_path / "vawgan.pt")
    assert b.train_info["precision"] == "fp32"
    assert b.train_info["precision_reason"] == "set in the configuration"


# ---------------------------------------------------------------------- cycle term
def test_cycle_batch_windows_are_the_neighbours_windows(data):
    """cycle_batch's (n, 2k+1, Din) windows are the encoder inputs of frames t-k..t+k
    of the same utterance (clamped at its edges), so the converted window the cycle
    encodes again is built as conversion builds it."""
    from vawgan.data import Sampler

    k = 2
    gen = torch.Generator().manual_seed(0)
    s = Sampler(data, 1, gen, context=k)
    x, spk, win, mask = s.cycle_batch(64)
    assert mask is None and x.shape == (64, data.n_dims)
    assert win.shape == (64, 2 * k + 1, (2 * k + 1) * data.n_dims)
    D = data.n_dims
    # the centre window's centre frame is x itself
    assert torch.equal(win[:, k, k * D:(k + 1) * D], x)
    # window j's centre frame is frame t + j - k, clamped to the utterance
    row = torch.nonzero((data.frames == x[0]).all(dim=1))[0, 0]
    first, last = s.first[row], s.last[row]
    for j in range(2 * k + 1):
        r = torch.clamp(row + j - k, first, last)
        assert torch.equal(win[0, j, k * D:(k + 1) * D], data.frames[r])
        assert torch.equal(win[0, j], s.windows(r[None])[0])
    assert torch.equal(spk, data.spk[[torch.nonzero((data.frames == xi).all(dim=1))[0, 0]
                                      for xi in x]])


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_cycle_term_trains_and_resumes(tmp_path, data, arch):
    model = {"arch": arch, "context": 1} if arch == "mlp" else {"arch": "conv", "segment": 8}
    cfg = tiny_cfg(model=model, train={"cyc_weight": 1.0, "vae_steps": 30, "gan_steps": 4,
                                       "precision": "fp32"})
    t = Trainer(cfg, data, tmp_path / "a", progress=False)
    t.fit()
    h = [x for x in _history(tmp_path / "a") if "cyc" in x]
    assert {x["phase"] for x in h} == {1, 3}
    assert all(np.isfinite(x["cyc"]) and x["cyc"] > -100 for x in h)
    # the term changes training (it is not silently skipped) ...
    off = Trainer(tiny_cfg(model=model, train={"vae_steps": 30, "gan_steps": 4,
                                               "precision": "fp32"}), data, tmp_path / "off",
                  progress=False)
    off.fit()
    assert any(not torch.equal(a, b) for a, b in zip(t.model.state_dict().values(),
                                                     off.model.state_dict().values()))
    # ... and resume is exact with it
    r2 = _resumed(cfg, data, tmp_path / "b", 12)
    _assert_same_weights(t, r2)


def test_cycle_weight_checked():
    with pytest.raises(ConfigError, match="cyc_weight"):
        tiny_cfg(train={"cyc_weight": -1.0})


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_training_with_speaker_bias_learns_the_rows_and_resumes(tmp_path, data, arch):
    """``model.spk_bias: true`` in training (not only in enrollment): the per-speaker
    rows start at zero, every phase updates them, and resume stays exact."""
    model = {"arch": arch, "context": 1, "spk_bias": True} if arch == "mlp" else \
        {"arch": "conv", "segment": 8, "spk_bias": True}
    cfg = tiny_cfg(model=model, train={"vae_steps": 20, "critic_steps": 2, "gan_steps": 4,
                                       "precision": "fp32"})
    t = Trainer(cfg, data, tmp_path / "a", progress=False)
    assert torch.count_nonzero(t.model.decoder.spk_bias.weight) == 0
    t.fit(max_steps=20)  # phase 1 only
    after_vae = t.model.decoder.spk_bias.weight.detach().clone()
    assert torch.count_nonzero(after_vae) > 0
    # every speaker seen in training got its own row (rows differ between speakers)
    assert not torch.allclose(after_vae[0], after_vae[1])
    t.fit()
    assert not torch.equal(after_vae, t.model.decoder.spk_bias.weight)  # phase 3 too
    r2 = _resumed(cfg, data, tmp_path / "b", 23)
    _assert_same_weights(t, r2)


def test_gp_fraction_checked_and_sets_the_penalty_rows(data):
    for bad in (0.0, 1.5, -0.25):
        with pytest.raises(ConfigError, match="gp_fraction"):
            tiny_cfg(train={"gp_fraction": bad})
    cfg = tiny_cfg(train={"gp_fraction": 0.25, "batch_size": 64})
    r = runner_for(cfg, data)
    assert r.n_units == 64 and r.gp_rows == 16
    assert runner_for(tiny_cfg(train={"gp_fraction": 0.001}), data).gp_rows == 1
    # 1 takes every item (the WGAN-GP as published); the default is a quarter
    r1 = runner_for(tiny_cfg(train={"gp_fraction": 1.0}), data)
    assert r1.gp_rows == r1.n_units
    r0 = runner_for(tiny_cfg(), data)
    assert r0.gp_rows == max(1, round(r0.n_units * 0.25)) < r0.n_units
