"""The model bundle: one file with everything conversion needs.

Format (one ``torch.save`` file, see docs/design.md)::

    {"format": "vawgan-bundle", "format_version": 1, "kind": "vae" | "vawgan",
     "vawgan_version": "0.1.0", "config": {...resolved Config...},
     "speakers": [names; index = speaker id], "stats": {speaker: SpeakerStats dict},
     "state_dict": {...VAWGAN weights...}, "train_info": {...}}

``kind == "vae"`` is the VAE after phase 1 (the over-smoothed baseline), ``"vawgan"``
the final adversarially trained model. Importing this module does not import torch.

Examples
--------
>>> b = load_bundle("exp/vawgan.pt")                          # doctest: +SKIP
>>> y = b.convert_body(body, src_mean, src_std, "TM1")         # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

from .errors import BundleError
from .io import PathLike, atomic_path

FORMAT = "vawgan-bundle"
FORMAT_VERSION = 1
KINDS = ("vae", "vawgan")
_KEYS = ("kind", "config", "speakers", "stats", "state_dict")


def save_bundle(path: PathLike, *, state_dict: Mapping[str, Any], config: Any,
                speakers: List[str], stats: Mapping[str, Any], kind: str,
                train_info: Optional[Mapping[str, Any]] = None) -> None:
    """Write a bundle atomically.

    Parameters
    ----------
    path : path
    state_dict : mapping
        ``VAWGAN.state_dict()`` (tensors are copied to the CPU).
    config : Config or dict
        The resolved configuration.
    speakers : list of str
        Index = speaker id.
    stats : mapping
        ``{speaker: SpeakerStats | dict}`` with at least ``mcep_mean`` / ``mcep_std`` (39,).
    kind : {"vae", "vawgan"}
    train_info : mapping, optional
        Steps, final losses, data size, ...
    """
    import torch

    from . import __version__

    if kind not in KINDS:
        raise ValueError(f"save_bundle: kind={kind!r}, expected one of {KINDS}")
    speakers = [str(s) for s in speakers]
    if not speakers or len(set(speakers)) != len(speakers):
        raise ValueError(f"save_bundle: speakers must be unique and non-empty, got {speakers}")
    stats_d = {}
    for s in speakers:
        if s not in stats:
            raise ValueError(f"save_bundle: no statistics for speaker {s}")
        st = stats[s]
        d = st.to_dict() if hasattr(st, "to_dict") else dict(st)
        stats_d[s] = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in d.items()}
    cfg = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    obj = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
           "vawgan_version": __version__, "config": cfg, "speakers": speakers,
           "stats": stats_d,
           "state_dict": {k: v.detach().cpu().clone() for k, v in state_dict.items()},
           "train_info": dict(train_info or {})}
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(obj, tmp)


class Bundle:
    """A loaded model bundle (see :func:`load_bundle`).

    Attributes
    ----------
    path : Path
    kind : str
        ``"vae"`` or ``"vawgan"``.
    config : Config
    speakers : list of str
    stats : dict
        ``{speaker: SpeakerStats}`` (plain dicts when ``vawgan.stats`` is unavailable).
    train_info : dict
    vawgan_version : str
    """

    def __init__(self, path: Path, obj: Dict[str, Any]):
        from .config import Config
        from .errors import ConfigError

        self.path = Path(path)
        self.kind = obj["kind"]
        self.vawgan_version = str(obj.get("vawgan_version", "?"))
        self.train_info = dict(obj.get("train_info") or {})
        try:
            self.config = Config.from_dict(obj["config"])
        except ConfigError as e:
            raise BundleError(f"{path}: bundle config is invalid ({e})") from None
        self.speakers = list(obj["speakers"])
        self._stats_raw = obj["stats"]
        for s in self.speakers:
            st = self._stats_raw.get(s) if isinstance(self._stats_raw, dict) else None
            if not isinstance(st, dict) or "mcep_mean" not in st or "mcep_std" not in st:
                raise BundleError(f"{path}: bundle has no mcep statistics for speaker {s}")
        self.stats = self._make_stats()
        self._state_dict = obj["state_dict"]
        self._model = None
        self._mcep = {s: (np.asarray(self._stats_raw[s]["mcep_mean"], dtype=np.float64),
                          np.asarray(self._stats_raw[s]["mcep_std"], dtype=np.float64))
                      for s in self.speakers}
        self.model  # build now so that a weight mismatch is reported at load time

    def _make_stats(self):
        try:
            from .stats import SpeakerStats
        except ImportError:
            return {s: dict(self._stats_raw[s]) for s in self.speakers}
        try:
            return {s: SpeakerStats.from_dict(self._stats_raw[s]) for s in self.speakers}
        except Exception:  # partial dicts (e.g. only mcep_mean/std): keep them plain
            return {s: dict(self._stats_raw[s]) for s in self.speakers}

    def __repr__(self) -> str:
        return (f"Bundle({str(self.path)!r}, kind={self.kind!r}, speakers={self.speakers}, "
                f"version={self.vawgan_version!r})")

    @property
    def n_dims(self) -> int:
        return int(self._mcep[self.speakers[0]][0].shape[0])

    @property
    def model(self):
        """The :class:`vawgan.model.VAWGAN` (CPU, eval mode), built on first use."""
        if self._model is None:
            from .model import build_model

            m = build_model(self.config.model, len(self.speakers), self.n_dims)
            try:
                m.load_state_dict(self._state_dict)
            except (RuntimeError, KeyError) as e:
                msg = str(e).splitlines()[0][:160]
                raise BundleError(f"{self.path}: weights do not match the bundle config ({msg})") \
                    from None
            m.eval()
            self._model = m
        return self._model

    def speaker_id(self, name: str) -> int:
        """Index of speaker ``name``; BundleError listing the model's speakers if unknown."""
        try:
            return self.speakers.index(name)
        except ValueError:
            raise BundleError(f"{self.path}: unknown speaker {name!r} "
                              f"(this model knows: {', '.join(self.speakers)})") from None

    def mcep_stats(self, name: str):
        """(mcep_mean (D,), mcep_std (D,)) of a model speaker."""
        self.speaker_id(name)
        return self._mcep[name]

    def convert_body(self, body: np.ndarray, source_mean: np.ndarray, source_std: np.ndarray,
                     target: str) -> np.ndarray:
        """Convert raw c1..c39 of any source to the target speaker.

        ``y = decode(mu(encode((x - m_src) / s_src)), target) * s_tgt + m_tgt``: the
        posterior mean is used (no sampling) and the decoder mean is returned.

        Parameters
        ----------
        body : ndarray, shape (T, D)
            Raw mel-cepstrum c1..c39 of the source.
        source_mean, source_std : ndarray, shape (D,)
            The source speaker's statistics (for a speaker unseen in training too).
        target : str
            A model speaker.

        Returns
        -------
        ndarray, shape (T, D), float64
            Raw c1..c39 of the target speaker.
        """
        import torch

        body = np.asarray(body, dtype=np.float64)
        d = self.n_dims
        if body.ndim != 2 or body.shape[1] != d:
            raise ValueError(f"convert_body: body must be (T, {d}), got {body.shape}")
        source_mean = np.asarray(source_mean, dtype=np.float64)
        source_std = np.asarray(source_std, dtype=np.float64)
        if source_mean.shape != (d,) or source_std.shape != (d,):
            raise ValueError(f"convert_body: source_mean/std must be ({d},), got "
                             f"{source_mean.shape} / {source_std.shape}")
        if not np.all(source_std > 0):
            raise ValueError("convert_body: source_std must be > 0")
        if not np.all(np.isfinite(body)):
            raise ValueError("convert_body: body contains NaN or infinite values")
        tid = self.speaker_id(target)
        t_mean, t_std = self._mcep[target]
        if body.shape[0] == 0:
            return np.zeros((0, d))
        x = torch.from_numpy(((body - source_mean) / source_std).astype(np.float32))
        with torch.no_grad():
            y = self.model.convert(x, torch.tensor(tid)).double().numpy()
        return y * t_std + t_mean


def load_bundle(path: PathLike) -> Bundle:
    """Read a bundle written by :func:`save_bundle`.

    Raises
    ------
    BundleError
        One line naming the file: missing, corrupt/truncated, not a bundle, from a newer
        vawgan, or weights inconsistent with the config.
    """
    import torch

    path = Path(path)
    if path.is_dir():
        raise BundleError(f"{path}: is a directory, not a model bundle")
    if not path.exists():
        raise BundleError(f"{path}: no such model bundle")
    if not os.access(path, os.R_OK):
        raise BundleError(f"{path}: permission denied")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # zip errors, unpickling errors, EOF: all mean unusable
        raise BundleError(f"{path}: corrupt or truncated model bundle "
                          f"({type(e).__name__})") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise BundleError(f"{path}: not a vawgan model bundle")
    ver = obj.get("format_version")
    if not isinstance(ver, int):
        raise BundleError(f"{path}: bundle has no valid format_version")
    if ver > FORMAT_VERSION:
        raise BundleError(f"{path}: bundle format {ver} is newer than this vawgan reads "
                          f"({FORMAT_VERSION}); upgrade vawgan")
    missing = [k for k in _KEYS if k not in obj]
    if missing:
        raise BundleError(f"{path}: bundle lacks '{missing[0]}'")
    if obj["kind"] not in KINDS:
        raise BundleError(f"{path}: unknown bundle kind {obj['kind']!r}")
    if not isinstance(obj["speakers"], list) or not obj["speakers"]:
        raise BundleError(f"{path}: bundle has no speakers")
    return Bundle(path, obj)
