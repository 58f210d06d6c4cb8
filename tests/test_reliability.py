"""Reliability battery (issue 11): hostile configuration, training that diverges, write
failures, option checks before work, exit codes, and audio that is odd but usable.

Every case checks the user-visible contract: one line naming the file and the cause,
the right exit code, nothing half-written left behind, inputs and earlier outputs kept.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vawgan import io as vio
from vawgan.cli import convert_main, main
from vawgan.config import MAX_BATCH_SIZE, Config, load_config
from vawgan.errors import ConfigError, OutputError
from vawgan.features import SYNTH_F0_MIN, analyze_file, synthesis_f0, synthesize
from vawgan.parallel import worker_count

pysptk = pytest.importorskip("pysptk")
torch = pytest.importorskip("torch")

FS = 16000
#: root can write anywhere: permission cases cannot be staged for it
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _arctic(seconds: float = 1.6) -> np.ndarray:
    x, fs = sf.read(pysptk.util.example_audio_file())
    assert fs == FS
    return x[int(0.3 * fs): int((0.3 + seconds) * fs)].astype(np.float64)


@pytest.fixture(scope="module")
def wav(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("audio")
    sf.write(d / "src.wav", _arctic(), FS)
    return d / "src.wav"


@pytest.fixture(scope="module")
def bundle_path(wav, tmp_path_factory) -> Path:
    """A tiny untrained bundle: speakers SRC and TGT with the statistics of the clip."""
    from vawgan.export import save_bundle
    from vawgan.model import build_model
    from vawgan.stats import compute_speaker_stats

    cfg = Config.from_dict({"model": {"z_dim": 4, "hidden": 16, "n_layers": 1, "spk_dim": 2,
                                      "critic_hidden": 8, "critic_layers": 1}})
    st = compute_speaker_stats([analyze_file(wav)[0]], cfg.feature.silence_db, cfg.stats.ms_fft)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_bundle(path, model=build_model(cfg.model, 2, 39), config=cfg, speakers=["SRC", "TGT"],
                stats={"SRC": st, "TGT": st}, kind="vae", train_info={"steps": 0})
    return path


def _convert(capsys, *argv):
    rc = convert_main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _vawgan(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _one_line(err: str, *needles: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], lines[0]


def _leftovers(folder: Path):
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


# ----------------------------------------------------------------------------- 3. config
@pytest.mark.parametrize("section,key,value", [
    ("train", "kl_weight", float("nan")), ("train", "lr_enc", float("inf")),
    ("train", "gp_lambda", float("-inf")), ("feature", "silence_db", float("nan")),
    ("feature", "f0_ceil", float("inf"))])
def test_non_finite_numbers_rejected_in_every_section(section, key, value):
    with pytest.raises(ConfigError, match="finite"):
        Config.from_dict({section: {key: value}})


def test_non_finite_betas_rejected():
    with pytest.raises(ConfigError, match="critic_betas"):
        Config.from_dict({"train": {"critic_betas": "0.5,nan"}})


def test_non_finite_numbers_rejected_from_yaml(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  kl_weight: .nan\n")
    with pytest.raises(ConfigError, match="kl_weight"):
        load_config(p)
    p.write_text("train:\n  lr_enc: .inf\n")
    with pytest.raises(ConfigError, match="lr_enc"):
        load_config(p)


def test_batch_size_and_ms_fft_bounded():
    with pytest.raises(ConfigError, match="batch_size"):
        Config.from_dict({"train": {"batch_size": 1_000_000_000}})
    Config.from_dict({"train": {"batch_size": MAX_BATCH_SIZE}})  # the bound itself is fine
    with pytest.raises(ConfigError, match="ms_fft"):
        Config.from_dict({"stats": {"ms_fft": 0}})


# ----------------------------------------------------------------------------- 3. training
@pytest.fixture(scope="module")
def train_data(tmp_path_factory):
    from vawgan.data import load_training_data, make_synthetic_dump

    root = tmp_path_factory.mktemp("dump")
    utts, stats = make_synthetic_dump(root, n_utts=3, n_frames=80)
    return load_training_data(root, stats, utts, progress=False)


def _tiny_train_cfg() -> Config:
    return Config.from_dict({
        "model": {"context": 0, "hidden": 24, "n_layers": 2, "z_dim": 6, "spk_dim": 4,
                  "critic_hidden": 24, "critic_layers": 2},
        "train": {"batch_size": 32, "vae_steps": 12, "critic_steps": 4, "gan_steps": 6,
                  "n_critic": 2, "log_every": 3, "ckpt_every": 5, "threads": 1}})


def test_diverged_training_stops_and_keeps_the_last_checkpoint(tmp_path, train_data):
    from vawgan.errors import TrainingError
    from vawgan.train import Trainer

    t = Trainer(_tiny_train_cfg(), train_data, tmp_path, progress=False)
    t.fit(max_steps=5)  # checkpoint at step 5
    ckpt = (tmp_path / "checkpoint.pt").read_bytes()
    with torch.no_grad():  # what a too-high learning rate does, deterministically
        next(t.model.parameters()).fill_(float("nan"))
    with pytest.raises(TrainingError, match=r"diverged at step 6 .*not finite.*kept"):
        t.fit()
    assert (tmp_path / "checkpoint.pt").read_bytes() == ckpt
    assert not (tmp_path / "vae.pt").exists() and not (tmp_path / "vawgan.pt").exists()
    assert _leftovers(tmp_path) == []


def test_diverged_training_is_one_line_and_rc_1(tmp_path, monkeypatch, capsys):
    """Through the command: no 'done', exit code 1."""
    from vawgan.errors import TrainingError
    import vawgan.commands.train as cmd

    def boom(args):
        raise TrainingError("training diverged at step 50 (phase 1): rec not finite")

    monkeypatch.setattr(cmd, "run", boom)
    rc, out, err = _vawgan(capsys, "train", "--dump", "d", "--stats", "s", "--utts-file", "u",
                           "--outdir", "o")
    assert rc == 1
    _one_line(err, "vawgan train: error:", "diverged")


def test_train_refuses_stats_of_another_ms_fft_before_work(tmp_path, capsys):
    """The bundle at the end of training would not load (its modulation spectra would
    not fit its stats.ms_fft): refused before the dump is read."""
    from vawgan.data import make_synthetic_dump
    from vawgan.stats import SpeakerStats, save_stats

    _, stats = make_synthetic_dump(tmp_path / "dump", n_utts=2, n_frames=40)
    save_stats(tmp_path / "stats.json", {k: SpeakerStats.from_dict(v) for k, v in stats.items()},
               None, 256)
    cfgp = tmp_path / "c.yaml"
    cfgp.write_text("stats:\n  ms_fft: 512\n")
    rc, _, err = _vawgan(capsys, "train", "--dump", tmp_path / "nodump", "--stats",
                         tmp_path / "stats.json", "--utts-file", tmp_path / "nolist",
                         "--config", cfgp, "--outdir", tmp_path / "exp")
    assert rc == 1
    _one_line(err, "stats.json", "ms_fft 256", "stats.ms_fft 512")
    assert not (tmp_path / "exp").exists()


def test_stale_temporaries_cleaned_at_resume(tmp_path, train_data):
    from vawgan.train import Trainer

    stale = [tmp_path / ".checkpoint.pt.abc123.tmp.pt", tmp_path / ".vae.pt.x1.tmp"]
    for p in stale:
        p.write_bytes(b"half a checkpoint")
    keep = tmp_path / "notes.tmp"  # not one of ours
    keep.write_text("mine")
    Trainer(_tiny_train_cfg(), train_data, tmp_path, progress=False).fit(max_steps=1)
    assert not any(p.exists() for p in stale)
    assert keep.read_text() == "mine"


# ----------------------------------------------------------------------------- 4. writes
def test_atomic_write_into_a_file_parent(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder|parent is a file"):
        vio.atomic_write_text(tmp_path / "afile" / "out.txt", "y")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        vio.check_writable(tmp_path / "afile" / "sub" / "out.txt")
    with pytest.raises(OutputError, match="is a folder"):
        vio.check_writable(tmp_path)
    with pytest.raises(OutputError, match="is a file, not a folder"):
        vio.check_writable(tmp_path / "afile", folder=True)
    vio.check_writable(tmp_path / "new" / "deeper" / "out.txt")  # creatable: fine
    assert not (tmp_path / "new").exists()  # a check creates nothing


def test_disk_full_is_named_and_leaves_nothing(tmp_path, monkeypatch):
    old = tmp_path / "out.txt"
    old.write_text("previous result")

    def full(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(OutputError, match=r"out.txt: cannot write \(no space left on device\)"):
        vio.atomic_write_text(old, "new result")
    monkeypatch.undo()
    assert old.read_text() == "previous result"
    assert _leftovers(tmp_path) == []


def test_writer_failure_on_a_full_disk_is_named(tmp_path, monkeypatch):
    """libsndfile / torch.save fail with their own errors on a full disk ("System
    error", "unexpected pos"): named from the free space of the folder."""
    monkeypatch.setattr(vio.shutil, "disk_usage", lambda p: type("U", (), {"free": 0})())
    with pytest.raises(OutputError, match="no space left on device"):
        with vio.atomic_path(tmp_path / "ckpt.pt") as tmp:
            raise RuntimeError("unexpected pos 64 vs 0")
    monkeypatch.undo()
    with pytest.raises(RuntimeError, match="unexpected pos"):  # with space: not a disk error
        with vio.atomic_path(tmp_path / "ckpt.pt") as tmp:
            raise RuntimeError("unexpected pos 64 vs 0")
    assert _leftovers(tmp_path) == []


def test_replacing_keeps_the_file_mode(tmp_path):
    p = tmp_path / "out.txt"
    p.write_text("a")
    os.chmod(p, 0o640)
    vio.atomic_write_text(p, "b")
    assert p.read_text() == "b" and stat.S_IMODE(p.stat().st_mode) == 0o640


@pytest.mark.skipif(IS_ROOT, reason="root writes anywhere")
def test_read_only_folder_is_refused_before_work(tmp_path, wav, bundle_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    try:
        rc, _, err = _convert(capsys, wav, ro / "out.wav", "--model", bundle_path)
        assert rc == 1
        _one_line(err, "ro/out.wav", "permission denied")
    finally:
        os.chmod(ro, 0o755)


def test_unwritable_folder_is_refused_before_work(tmp_path, wav, bundle_path, capsys,
                                                 monkeypatch):
    """The same check as above where the tests run as root (who writes anywhere): the
    folder's permission comes from os.access, and the input is never converted."""
    import vawgan.convert as convert_mod

    ro = tmp_path / "ro"
    ro.mkdir()
    real_access = os.access

    def access(path, mode, *a, **kw):
        if Path(path) == ro and mode & os.W_OK:
            return False
        return real_access(path, mode, *a, **kw)

    def no_work(*a, **kw):
        raise AssertionError("converted before the output folder was checked")

    monkeypatch.setattr(vio.os, "access", access)
    monkeypatch.setattr(convert_mod.Converter, "convert_file", no_work)
    rc, _, err = _convert(capsys, wav, ro / "out.wav", "--model", bundle_path)
    assert rc == 1
    _one_line(err, "ro/out.wav", "permission denied")
    assert list(ro.iterdir()) == []


def test_vawgan_convert_replaces_an_output_keeping_its_mode(tmp_path, wav, bundle_path,
                                                            capsys):
    """vawgan-convert replaces an existing output (docs/cli.md, --help), with its mode."""
    out = tmp_path / "out.wav"
    out.write_bytes(b"an older result")
    os.chmod(out, 0o640)
    rc, _, err = _convert(capsys, wav, out, "--model", bundle_path, "--metrics-on", "none")
    assert rc == 0, err
    assert sf.info(out).samplerate == FS  # replaced by the conversion
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert _leftovers(tmp_path) == []


def test_convert_output_under_a_file(tmp_path, wav, bundle_path, capsys):
    (tmp_path / "afile").write_text("x")
    rc, _, err = _convert(capsys, wav, tmp_path / "afile" / "out.wav", "--model", bundle_path)
    assert rc == 1
    _one_line(err, "afile/out.wav", "not a folder")


def test_convert_disk_full_one_line(tmp_path, wav, bundle_path, capsys, monkeypatch):
    def full(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_bytes", full)
    rc, _, err = _convert(capsys, wav, tmp_path / "out.wav", "--model", bundle_path)
    assert rc == 1
    _one_line(err, "out.wav", "no space left on device")
    assert list(tmp_path.iterdir()) == []


def test_stats_extract_evaluate_outputs_checked_first(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    bad = tmp_path / "afile" / "x"
    rc, _, err = _vawgan(capsys, "stats", "--dump", tmp_path / "nodump", "--out", bad)
    assert rc == 1
    _one_line(err, "not a folder")  # before the (missing) dump is looked at
    rc, _, err = _vawgan(capsys, "extract", "--corpus", tmp_path / "nocorpus", "--out", bad)
    assert rc == 1
    _one_line(err, "not a folder")
    rc, _, err = _vawgan(capsys, "evaluate", "--ref", tmp_path / "noref", "--system",
                         f"A={tmp_path}", "--out-json", tmp_path)
    assert rc == 1
    _one_line(err, "is a folder")


def test_system_errors_are_one_line(capsys, monkeypatch):
    import vawgan.commands.stats as cmd

    def denied(args):
        raise PermissionError(errno.EACCES, "Permission denied", "dump/A/1.npz")

    monkeypatch.setattr(cmd, "run", denied)
    rc, _, err = _vawgan(capsys, "stats", "--dump", "d", "--out", "o")
    assert rc == 1
    _one_line(err, "dump/A/1.npz", "Permission denied")


# ----------------------------------------------------------------------------- 6. options
def test_options_checked_before_work(tmp_path, wav, bundle_path, capsys):
    out = tmp_path / "out.wav"
    rc, _, err = _convert(capsys, wav, out, "--model", bundle_path, "--target", "")
    assert rc == 1
    _one_line(err, "--target is empty")
    rc, _, err = _convert(capsys, wav, out, "--model", bundle_path, "--source", " ")
    assert rc == 1
    _one_line(err, "--source is empty")
    rc, _, err = _convert(capsys, wav, out, "--model", tmp_path)
    assert rc == 1
    _one_line(err, "is a folder, not a model bundle")
    garbage = tmp_path / "ref.wav"
    garbage.write_bytes(b"RIFF....not audio at all" * 10)
    rc, _, err = _convert(capsys, wav, out, "--model", bundle_path, "--reference", garbage)
    assert rc == 1
    _one_line(err, "ref.wav", "not a readable audio file")
    assert not out.exists()  # nothing written before the reference was looked at


@pytest.mark.parametrize("cmd", ["evaluate", "report"])
@pytest.mark.parametrize("n", ["0", "-4"])
def test_ms_fft_must_be_positive(cmd, n, tmp_path, wav, capsys):
    extra = ["--outdir", str(tmp_path / "rep")] if cmd == "report" else []
    rc, _, err = _vawgan(capsys, cmd, "--ref", wav.parent, "--system", f"A={wav.parent}",
                         "--ms-fft", n, *extra)
    assert rc == 1
    _one_line(err, f"--ms-fft {n}")


def test_worker_count_is_bounded():
    cores = os.cpu_count() or 1
    assert worker_count(100, 3) == min(3, cores)
    assert worker_count(-1, 1000) == cores
    assert worker_count(2, 0) == 1
    with pytest.raises(ValueError):
        worker_count(0, 3)


def test_batch_process_workers_capped(tmp_path, wav, bundle_path, monkeypatch):
    """``convert_batch(jobs=100, backend="processes")`` on 2 files starts at most 2
    processes (and no more than the cores); the work itself runs here in-process."""
    import joblib

    from vawgan.bundle import load_bundle
    from vawgan.convert import Converter
    from vawgan.convert_batch import convert_batch

    asked = []

    class Recording:
        def __init__(self, n_jobs=None, backend=None, **kw):
            asked.append((n_jobs, backend))

        def __call__(self, tasks):
            return (f(*a, **kw) for f, a, kw in tasks)

    monkeypatch.setattr(joblib, "Parallel", Recording)
    todo = [(wav, tmp_path / "o1.wav"), (wav.parent / "missing.wav", tmp_path / "o2.wav")]
    conv = Converter(load_bundle(bundle_path), "TGT")
    res = convert_batch(conv, todo, tmp_path, jobs=100, backend="processes",
                        metrics_on="none", model=bundle_path, progress=False)
    assert len(res.converted) == 1 and len(res.failed) == 1
    (n_jobs, backend), = asked
    assert n_jobs == min(2, os.cpu_count() or 1)
    assert backend == ("loky" if n_jobs > 1 else "threading")


# ----------------------------------------------------------------------------- 1. long inputs
@pytest.mark.parametrize("prog", ["vawgan-convert", "analysis-synthesis"])
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc/<pid>/stat")
def test_ctrl_c_acts_soon_on_a_long_input(prog, tmp_path):
    """Ctrl-C on a 90 s input: exit 130 with one line, and little work after the signal.

    Measured as the child's CPU time after the signal, which does not depend on how
    loaded the machine is: at most the rest of one ~10 s piece (~1.5 s of Harvest). A
    whole-signal Harvest cannot be interrupted until it returns (of 45 s: 19 s wall).
    """
    import resource
    import signal
    import time

    x, fs = sf.read(pysptk.util.example_audio_file())
    one = np.concatenate([x, np.zeros(int(0.4 * fs))])
    src = tmp_path / "long.wav"
    sf.write(src, np.tile(one, int(np.ceil(90 * fs / len(one))))[: 90 * fs], fs)
    main_fn = "convert_main(sys.argv[1:])" if prog == "vawgan-convert" else \
        "main(['analysis-synthesis'] + sys.argv[1:])"
    # Ctrl-C as from a terminal, whatever the parent ignores: a job started in the
    # background of a non-interactive shell (nohup ... &) inherits SIGINT ignored
    code = ("import signal, sys; from vawgan.cli import convert_main, main\n"
            "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
            f"print('ready', flush=True); sys.exit({main_fn})\n")
    argv = [str(src), str(tmp_path / "out.wav")]
    argv += ["--metrics-on", "none"] if prog == "vawgan-convert" else ["--no-metrics"]

    def cpu_children():
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    before_all = cpu_children()
    p = subprocess.Popen([sys.executable, "-c", code, *argv], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        time.sleep(3.0)  # inside the analysis
        with open(f"/proc/{p.pid}/stat") as f:  # utime, stime: fields 14, 15
            ticks = f.read().rsplit(")", 1)[1].split()[11:13]
        cpu_at_signal = sum(int(t) for t in ticks) / os.sysconf("SC_CLK_TCK")
        assert p.poll() is None
        t = time.monotonic()
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=300)
        waited = time.monotonic() - t
    finally:
        if p.poll() is None:
            p.kill()
    cpu_after = cpu_children() - before_all - cpu_at_signal
    assert p.returncode == 130, err[-2000:]
    name = "vawgan-convert" if prog == "vawgan-convert" else "vawgan analysis-synthesis"
    lines = [ln for ln in err.splitlines() if "interrupted" in ln or "Traceback" in ln]
    assert lines == [f"{name}: interrupted"]
    assert cpu_after < 3.0, f"{cpu_after:.1f} s of CPU ({waited:.1f} s) after Ctrl-C"
    assert not (tmp_path / "out.wav").exists() and _leftovers(tmp_path) == []


# ----------------------------------------------------------------------------- 6. exit codes
@pytest.fixture
def corpus(tmp_path, wav) -> Path:
    root = tmp_path / "corpus"
    (root / "A").mkdir(parents=True)
    sf.write(root / "A" / "good.wav", _arctic(1.0), FS)
    (root / "A" / "bad.wav").write_bytes(b"not audio" * 50)
    return root


def test_extract_partial_failure_exits_1(corpus, tmp_path, capsys):
    cfgp = tmp_path / "c.yaml"
    cfgp.write_text("feature:\n  f0_method: dio\n")
    rc, out, err = _vawgan(capsys, "extract", "--corpus", corpus, "--out", tmp_path / "dump",
                           "--config", cfgp, "--no-progress")
    assert rc == 1
    assert "1 extracted" in out and "1 failed" in out and "bad.wav" in out
    assert (tmp_path / "dump" / "A" / "good.npz").is_file()  # the good file is kept


def test_extract_empty_corpus_says_so(tmp_path, capsys):
    (tmp_path / "c" / "A").mkdir(parents=True)
    rc, _, err = _vawgan(capsys, "extract", "--corpus", tmp_path / "c", "--out", tmp_path / "d",
                         "--no-progress")
    assert rc == 1
    assert "no audio files found" in err


def test_evaluate_with_unreadable_files_exits_1(tmp_path, wav, capsys):
    ref, sysd = tmp_path / "ref", tmp_path / "sys"
    ref.mkdir()
    sysd.mkdir()
    sf.write(ref / "u1.wav", _arctic(1.0), FS)
    sf.write(ref / "u2.wav", _arctic(1.2), FS)
    sf.write(sysd / "u1.wav", _arctic(1.0), FS)
    (sysd / "u2.wav").write_bytes(b"garbage" * 100)
    rc, out, _ = _vawgan(capsys, "evaluate", "--ref", ref, "--system", f"S={sysd}",
                         "--out-json", tmp_path / "r.json")
    assert rc == 1
    assert "unreadable files (1)" in out and "u2.wav" in out
    assert (tmp_path / "r.json").is_file()  # what was computed is written


# ----------------------------------------------------------------------------- 2. f0 safety
def test_synthesis_f0_is_safe():
    f0 = np.array([0.0, 120.0, np.nan, np.inf, -5.0, 1e9, 3.0, 7999.0])
    got = synthesis_f0(f0, 16000)
    assert got.tolist() == [0.0, 120.0, 0.0, 0.0, 0.0, 8000.0, SYNTH_F0_MIN, 7999.0]


def test_absurd_f0_does_not_crash_synthesis(wav):
    """pyworld.synthesize corrupts the heap on f0 = 1e9 (rc 139 before): in a child."""
    code = ("import numpy as np; from vawgan.features import analyze_file, synthesize\n"
            f"f, _ = analyze_file({str(wav)!r})\n"
            "y = synthesize(f, f0=np.where(f.f0 > 0, 1e9, 0.0))\n"
            "assert np.all(np.isfinite(y)); print('ok', len(y))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith("ok")


def test_converted_f0_within_the_analysis_range(bundle_path, wav):
    from vawgan.bundle import load_bundle
    from vawgan.convert import Converter

    b = load_bundle(bundle_path)
    feats, _ = analyze_file(wav, b.config.feature)
    feats = feats.replace(f0=np.where(feats.f0 > 0, feats.f0 * 6.0, 0.0))  # absurdly high input
    conv = Converter(b, "TGT", "SRC").convert_features(feats)
    v = conv.f0 > 0
    assert v.any()
    assert conv.f0[v].max() <= b.config.feature.f0_ceil
    assert conv.f0[v].min() >= b.config.feature.f0_floor


# ----------------------------------------------------------------------------- 5. audio
def _level_db(path: Path) -> float:
    x, _ = sf.read(path, always_2d=True)
    return float(10 * np.log10(np.mean(x.mean(axis=1) ** 2)))


@pytest.mark.parametrize("rate,subtype", [(8000, "PCM_16"), (8000, "ULAW"), (11025, "PCM_16"),
                                          (16000, "PCM_16"), (22050, "PCM_16"),
                                          (44100, "PCM_16"), (48000, "PCM_16")])
def test_output_level_follows_the_input_at_every_rate(rate, subtype, tmp_path, bundle_path,
                                                      capsys):
    import librosa

    # quiet enough that the untrained model's output is not scaled down to avoid clipping
    x = librosa.resample(0.05 * _arctic(), orig_sr=FS, target_sr=rate)
    src = tmp_path / f"in_{rate}.wav"
    sf.write(src, x, rate, subtype=subtype)
    out = tmp_path / "out.wav"
    rc, _, err = _convert(capsys, src, out, "--model", bundle_path, "--metrics-on", "none")
    assert rc == 0, err
    assert sf.info(out).samplerate == rate
    assert abs(_level_db(out) - _level_db(src)) <= 1.0


def test_antiphase_stereo_is_explained_and_converted(tmp_path, bundle_path, capsys):
    x = 0.5 * _arctic()
    src = tmp_path / "anti.wav"
    sf.write(src, np.stack([x, -x], axis=1), FS)
    out = tmp_path / "out.wav"
    with pytest.warns(UserWarning, match=r"antiphase.*channel 1"):
        rc, _, err = _convert(capsys, src, out, "--model", bundle_path, "--metrics-on", "none")
    assert rc == 0
    assert out.is_file()


def test_truncated_wav_warns(tmp_path, bundle_path, capsys):
    full = tmp_path / "full.wav"
    sf.write(full, 0.5 * _arctic(), FS, subtype="PCM_16")
    data = full.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.warns(UserWarning, match=r"truncated WAV.*announces 1.60 s.*holds 0.80 s"):
        rc, _, _ = _convert(capsys, cut, tmp_path / "o.wav", "--model", bundle_path,
                            "--metrics-on", "none")
    assert rc == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a complete file: no warning at all
        rc, _, _ = _convert(capsys, full, tmp_path / "o2.wav", "--model", bundle_path,
                            "--metrics-on", "none")
    assert rc == 0


def test_clipping_warned_once(tmp_path, bundle_path, capsys):
    src = tmp_path / "clip.wav"
    sf.write(src, np.clip(20 * _arctic(), -1, 1), FS)
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")  # every warn() call is recorded, repeats too
        rc, _, _ = _convert(capsys, src, tmp_path / "o.wav", "--model", bundle_path,
                            "--metrics-on", "none")
    assert rc == 0
    assert sum("clipped audio" in str(w.message) for w in got) == 1


def test_non_utf8_file_names(tmp_path, wav, bundle_path):
    """A file name that is not valid UTF-8 converts, and prints, in a child process
    with a UTF-8 locale (as a user's shell)."""
    name = os.fsencode(str(tmp_path)) + b"/caf\xe9.wav"
    try:
        with open(name, "wb") as f:
            f.write(wav.read_bytes())
    except OSError:
        pytest.skip("this file system refuses non-UTF-8 names")
    out = os.fsencode(str(tmp_path)) + b"/out\xff.wav"
    env = dict(os.environ, LC_ALL="C.UTF-8", PYTHONIOENCODING="utf-8")
    code = "import sys; from vawgan.cli import convert_main; sys.exit(convert_main())"
    r = subprocess.run([os.fsencode(sys.executable), b"-c", code.encode(), name, out,
                        b"--model", os.fsencode(str(bundle_path))],
                       capture_output=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    assert os.path.exists(out)
    assert b"Traceback" not in r.stderr


def test_recipe_help_from_any_directory(tmp_path):
    """``bash recipes/vcc/run.sh --help`` from the repository root (and elsewhere)."""
    script = Path(__file__).resolve().parents[1] / "recipes" / "vcc" / "run.sh"
    for cwd in (script.parents[2], tmp_path):
        r = subprocess.run(["bash", str(script.relative_to(script.parents[2]) if cwd != tmp_path
                                        else script), "--help"],
                           cwd=cwd, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert "VCC2016 recipe" in r.stdout and "--stop_stage" in r.stdout


def test_one_call_api(tmp_path, wav, bundle_path):
    """``vawgan.convert_audio(in, out, target=...)``: the README's one-call API."""
    import vawgan

    info = vawgan.convert_audio(wav, tmp_path / "o.wav", target="TGT", model=bundle_path)
    assert (tmp_path / "o.wav").is_file() and info["target"] == "TGT"
    assert info["postfilter"] == "gv" and "gv_ratio" in info["metrics_before_postfilter"]
    info2 = vawgan.convert_audio(wav, tmp_path / "o2.wav", model=bundle_path, postfilter="none")
    assert info2["metrics_before_postfilter"] == {} and info2["target"] == "TGT"
