"""Speaker similarity of converted speech: does it sound like the target?

MCD says how close a conversion's spectra are to the target's recording of the same
sentence; it does not say whose voice a listener hears. This module embeds utterances
with a pretrained speaker encoder -- Resemblyzer's d-vector model (GE2E; Wan et al.
2018), whose weights ship inside its wheel, so nothing is downloaded at run time; the
optional extra ``pip install 'vawgan[eval]'`` installs it -- and reports, per converted
utterance,

* ``spk_sim``: the cosine similarity of its embedding to the target speaker's centroid
  (the normalized mean embedding of some of the target's training utterances);
* ``spk_id``: 1 when, among the centroids of all the model's speakers, the target's is
  the nearest (speaker identification), else 0; its mean is the identification
  accuracy.

Centroids are cached in a ``.npz`` keyed by the files they were made from (path, size,
modification time) and the encoder, so a rerun embeds only what changed.

Used by :func:`vawgan.evaluate.evaluate` (``vawgan evaluate --centroids ... --target``).
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np

from .errors import VawganError, file_error
from .io import PathLike, atomic_path

#: what to install for this module
EXTRA_HINT = "pip install 'vawgan[eval]' (the Resemblyzer speaker encoder)"
#: sample rate of the encoder's input
ENCODER_FS = 16000

_ENCODER: Dict[str, Any] = {}
_LOCK = threading.Lock()


def load_encoder():
    """The speaker encoder (loaded once per process, on the CPU); VawganError when the
    ``eval`` extra is not installed."""
    with _LOCK:
        if "enc" not in _ENCODER:
            try:
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # webrtcvad imports pkg_resources
                    from resemblyzer import VoiceEncoder
            except ImportError:
                raise VawganError(f"speaker similarity needs the speaker encoder: "
                                  f"{EXTRA_HINT}") from None
            _ENCODER["enc"] = VoiceEncoder("cpu", verbose=False)
        return _ENCODER["enc"]


def encoder_id() -> str:
    """Names the encoder and its weights (part of the centroid cache's key)."""
    try:
        import importlib.metadata as md

        return f"resemblyzer-{md.version('resemblyzer')}"
    except Exception:  # pragma: no cover - not installed: load_encoder says so
        return "resemblyzer-unknown"


def embed_file(path: PathLike) -> np.ndarray:
    """The unit-norm embedding (256,) of one audio file (any rate; resampled to 16 kHz,
    silences trimmed by the encoder's own voice-activity detection)."""
    from resemblyzer import preprocess_wav

    from .audio import read_audio, resample

    enc = load_encoder()
    x, fs = read_audio(path)
    wav = preprocess_wav(resample(x, fs, ENCODER_FS).astype(np.float32), ENCODER_FS)
    if len(wav) < ENCODER_FS // 4:
        raise VawganError(f"{path}: too little speech for a speaker embedding "
                          f"({len(wav) / ENCODER_FS:.2f} s after trimming silences)")
    with _LOCK:  # one torch model: one utterance at a time
        e = enc.embed_utterance(wav)
    return np.asarray(e, dtype=np.float64) / max(float(np.linalg.norm(e)), 1e-12)


def embed_files(paths: Sequence[PathLike], progress: Optional[bool] = None,
                desc: str = "speaker embeddings") -> Dict[Path, Any]:
    """``{path: embedding (256,) or VawganError}`` (a file that fails does not stop the
    others)."""
    from tqdm import tqdm

    load_encoder()
    out: Dict[Path, Any] = {}
    disable = None if progress is None else not progress
    for p in tqdm(list(dict.fromkeys(Path(p) for p in paths)), desc=desc, unit="file",
                  disable=disable):
        try:
            out[p] = embed_file(p)
        except Exception as e:  # keep going; reported with the type
            out[p] = file_error(p, e)
    return out


def _files_key(files: Sequence[Path]) -> str:
    h = hashlib.sha256(encoder_id().encode())
    for p in sorted(map(str, files)):
        st = Path(p).stat()
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def speaker_centroids(speakers: Mapping[str, Sequence[PathLike]],
                      cache: Optional[PathLike] = None, progress: Optional[bool] = None
                      ) -> Dict[str, np.ndarray]:
    """Unit-norm mean embedding of each speaker's utterances.

    Parameters
    ----------
    speakers : mapping of speaker name -> audio files
        E.g. some training utterances of every speaker of a model.
    cache : path, optional
        ``.npz`` of centroids from an earlier call: a speaker whose file list (paths,
        sizes, modification times) and encoder are unchanged is not embedded again.
        Written atomically.

    Raises
    ------
    VawganError
        A speaker with no usable file, or a missing file.
    """
    for name, files in speakers.items():
        missing = [str(f) for f in files if not Path(f).is_file()]
        if not files or missing:
            raise VawganError(f"speaker {name}: " + (f"no such file {missing[0]}" if missing
                                                     else "no files for its centroid"))
    keys = {n: _files_key([Path(f) for f in fs]) for n, fs in speakers.items()}
    cached: Dict[str, np.ndarray] = {}
    if cache is not None and Path(cache).is_file():
        try:
            with np.load(cache, allow_pickle=False) as z:
                for n in speakers:
                    if f"key_{n}" in z and str(z[f"key_{n}"]) == keys[n]:
                        cached[n] = z[f"centroid_{n}"]
        except (OSError, ValueError, KeyError):
            cached = {}  # an unreadable cache is remade
    out: Dict[str, np.ndarray] = {}
    for n, files in speakers.items():
        if n in cached:
            out[n] = cached[n]
            continue
        embs = embed_files(files, progress, desc=f"centroid of {n}")
        good = [e for e in embs.values() if isinstance(e, np.ndarray)]
        if not good:
            first = next(iter(embs.values()))
            raise VawganError(f"speaker {n}: no usable utterance for its centroid ({first})")
        c = np.mean(good, axis=0)
        out[n] = c / max(float(np.linalg.norm(c)), 1e-12)
    if cache is not None and len(cached) < len(out):
        arrays = {f"centroid_{n}": c for n, c in out.items()}
        arrays.update({f"key_{n}": np.asarray(keys[n]) for n in out})
        with atomic_path(Path(cache), suffix=".npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
    return out


def similarity(embedding: np.ndarray, centroids: Mapping[str, np.ndarray],
               target: str) -> Dict[str, float]:
    """``spk_sim`` (cosine to the target's centroid) and ``spk_id`` (1.0 when the
    target's centroid is the nearest of ``centroids``) of one unit-norm embedding."""
    if target not in centroids:
        raise VawganError(f"target {target!r} has no centroid (speakers: "
                          f"{', '.join(centroids)})")
    names = list(centroids)
    sims = np.array([float(embedding @ centroids[n]) for n in names])
    return {"spk_sim": float(sims[names.index(target)]),
            "spk_id": float(names[int(np.argmax(sims))] == target)}
