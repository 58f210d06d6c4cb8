"""The model bundle: one file with everything conversion needs, readable without torch.

Format 2 (written by :func:`save_bundle`, see docs/design.md) is a numpy ``.npz``-style
zip (``np.load`` opens it too)::

    vawgan_bundle.json          {"format": "vawgan-bundle", "format_version": 2,
                                 "kind": "vae" | "vawgan", "vawgan_version": "0.1.0",
                                 "config": {...resolved Config...},
                                 "speakers": [names; index = speaker id],
                                 "stats": {speaker: scalar fields of SpeakerStats},
                                 "train_info": {...}, "arrays": [member names],
                                 "sha256": hex digest of the arrays}
    state_dict/<key>.npy        the VAWGAN weights (critic included), one array per key
    stats/<i>/<field>.npy       vector fields (mcep_mean, mcep_std, gv, ms) of speaker i

Format 1 (vawgan 0.1.0's trainer) is one ``torch.save`` of the same dict with a
``"state_dict"`` of tensors; it still loads (importing torch only for it), and
``vawgan bundle-upgrade OLD.pt [NEW.pt]`` (:func:`upgrade_bundle`) re-saves it as format 2.

``kind == "vae"`` is the VAE after phase 1 (the over-smoothed baseline), ``"vawgan"``
the final adversarially trained model. Importing this module, loading a format-2 bundle
and :meth:`Bundle.convert_body` do not import torch: conversion runs the encoder mean
and the decoder in numpy (:class:`NumpyGenerator`, equal to :mod:`vawgan.model`'s
modules to float32 rounding); only :attr:`Bundle.model` builds the torch module.

Examples
--------
>>> b = load_bundle("exp/vawgan.pt")                          # doctest: +SKIP
>>> y = b.convert_body(body, src_mean, src_std, "TM1")         # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from .errors import BundleError
from .io import PathLike, atomic_path

FORMAT = "vawgan-bundle"
FORMAT_VERSION = 2
#: the torch.save format of vawgan 0.1.0, still read
LEGACY_VERSION = 1
KINDS = ("vae", "vawgan")
META = "vawgan_bundle.json"
_KEYS = ("kind", "config", "speakers", "stats", "state_dict")
_META_KEYS = ("kind", "config", "speakers", "stats", "arrays", "sha256")


# ----------------------------------------------------------------------------- writing
def _to_numpy(v: Any) -> np.ndarray:
    """A tensor (any device, bf16 too) or array-like -> a numpy array."""
    if hasattr(v, "detach"):
        v = v.detach().cpu()
        if str(v.dtype) == "torch.bfloat16":
            v = v.float()
        return v.numpy().copy()
    return np.array(v)


def _json_default(v: Any):
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.generic,)):
        return v.item()
    if hasattr(v, "tolist"):  # a tensor
        return v.tolist()
    return str(v)


def arrays_sha256(arrays: Mapping[str, np.ndarray]) -> str:
    """Digest of named arrays: names, dtypes, shapes and bytes, in the given order."""
    h = hashlib.sha256()
    for name, a in arrays.items():
        a = np.ascontiguousarray(a)
        h.update(f"{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _write_v2(path: PathLike, meta: Dict[str, Any], state_dict: Mapping[str, np.ndarray],
              stats: Mapping[str, Mapping[str, Any]], speakers: List[str]) -> None:
    arrays: Dict[str, np.ndarray] = {}
    for k, v in state_dict.items():
        arrays[f"state_dict/{k}"] = _to_numpy(v)
    stats_meta: Dict[str, Dict[str, Any]] = {}
    for i, s in enumerate(speakers):
        st = stats[s]
        d = st.to_dict() if hasattr(st, "to_dict") else dict(st)
        stats_meta[s] = {}
        for k, v in d.items():
            if isinstance(v, (list, tuple, np.ndarray)) or hasattr(v, "detach"):
                arrays[f"stats/{i}/{k}"] = np.asarray(_to_numpy(v), dtype=np.float64)
            else:
                stats_meta[s][k] = v.item() if isinstance(v, np.generic) else v
    meta = dict(meta, stats=stats_meta, arrays=list(arrays), sha256=arrays_sha256(arrays))
    text = json.dumps(meta, indent=1, default=_json_default, allow_nan=True)
    with atomic_path(path, suffix=".npz") as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z:
            z.writestr(META, text)
            for name, a in arrays.items():
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.ascontiguousarray(a), allow_pickle=False)
                z.writestr(f"{name}.npy", buf.getvalue())


def save_bundle(path: PathLike, *, state_dict: Mapping[str, Any], config: Any,
                speakers: List[str], stats: Mapping[str, Any], kind: str,
                train_info: Optional[Mapping[str, Any]] = None) -> None:
    """Write a bundle (format 2) atomically.

    Parameters
    ----------
    path : path
    state_dict : mapping
        ``VAWGAN.state_dict()`` (tensors on any device, or numpy arrays).
    config : Config or dict
        The resolved configuration.
    speakers : list of str
        Index = speaker id.
    stats : mapping
        ``{speaker: SpeakerStats | dict}`` with at least ``mcep_mean`` / ``mcep_std`` (39,).
    kind : {"vae", "vawgan"}
    train_info : mapping, optional
        Steps, final losses, data size, ... (JSON; numpy values become lists/numbers).
    """
    from . import __version__

    if kind not in KINDS:
        raise ValueError(f"save_bundle: kind={kind!r}, expected one of {KINDS}")
    speakers = [str(s) for s in speakers]
    if not speakers or len(set(speakers)) != len(speakers):
        raise ValueError(f"save_bundle: speakers must be unique and non-empty, got {speakers}")
    for s in speakers:
        if s not in stats:
            raise ValueError(f"save_bundle: no statistics for speaker {s}")
    cfg = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
            "vawgan_version": __version__, "config": cfg, "speakers": speakers,
            "train_info": dict(train_info or {})}
    _write_v2(path, meta, state_dict, stats, speakers)


# ----------------------------------------------------------------------------- numpy networks
def expected_shapes(cfg: Any, n_speakers: int, n_dims: int) -> Dict[str, Tuple[int, ...]]:
    """``{key: shape}`` of ``build_model(cfg, n_speakers, n_dims).state_dict()``.

    Mirrors :mod:`vawgan.model` without importing torch (a test keeps them in step).
    """
    shapes: Dict[str, Tuple[int, ...]] = {}

    def mlp(prefix: str, n_in: int, hidden: int, n_layers: int, n_out: int, bias: bool = True):
        d = n_in
        for i in range(n_layers):  # Linear at 2i, LeakyReLU at 2i+1
            shapes[f"{prefix}.{2 * i}.weight"] = (hidden, d)
            shapes[f"{prefix}.{2 * i}.bias"] = (hidden,)
            d = hidden
        shapes[f"{prefix}.{2 * n_layers}.weight"] = (n_out, d)
        if bias:
            shapes[f"{prefix}.{2 * n_layers}.bias"] = (n_out,)

    mlp("encoder.net", (2 * cfg.context + 1) * n_dims, cfg.hidden, cfg.n_layers, 2 * cfg.z_dim)
    if cfg.decoder_variance == "learned":
        shapes["decoder.logvar"] = (n_dims,)
    shapes["decoder.embed.weight"] = (n_speakers, cfg.spk_dim)
    n_out = 2 * n_dims if cfg.decoder_variance == "frame" else n_dims
    mlp("decoder.net", cfg.z_dim + cfg.spk_dim, cfg.hidden, cfg.n_layers, n_out)
    shapes["critic.embed.weight"] = (n_speakers, cfg.spk_dim)
    if cfg.critic_arch == "conv":
        c = n_dims + cfg.spk_dim
        for i in range(cfg.critic_layers):
            shapes[f"critic.net.{2 * i}.weight"] = (cfg.critic_hidden, c, cfg.conv_kernel)
            shapes[f"critic.net.{2 * i}.bias"] = (cfg.critic_hidden,)
            c = cfg.critic_hidden
        shapes[f"critic.net.{2 * cfg.critic_layers}.weight"] = (1, c, 1)
    else:
        mlp("critic.net", n_dims + cfg.spk_dim, cfg.critic_hidden, cfg.critic_layers, 1,
            bias=False)
    return shapes


def _softplus(x: np.ndarray) -> np.ndarray:
    # torch.nn.functional.softplus (beta 1, threshold 20: linear above it)
    return np.where(x > 20.0, x, np.logaddexp(0.0, np.minimum(x, 20.0)))


def context_windows(x: np.ndarray, context: int) -> np.ndarray:
    """Encoder inputs of one utterance: frames t-k..t+k of each frame t, concatenated.

    Indices are clamped to the first/last frame (edge replication); ``context == 0``
    returns ``x``. The numpy twin of :func:`vawgan.model.context_windows`.

    Parameters
    ----------
    x : ndarray, shape (T, D)
    context : int

    Returns
    -------
    ndarray, shape (T, (2 * context + 1) * D)
    """
    if context == 0:
        return x
    T, D = x.shape
    idx = np.clip(np.arange(T)[:, None] + np.arange(-context, context + 1), 0, max(T - 1, 0))
    return x[idx].reshape(T, (2 * context + 1) * D)


class NumpyGenerator:
    """The encoder and decoder of :mod:`vawgan.model` in numpy float32 (no critic).

    ``Linear`` is ``x @ W.T + b``, ``LeakyReLU`` is ``max(h, slope * h)``; there are no
    normalization layers in the encoder or decoder.

    Parameters
    ----------
    state_dict : mapping of str to ndarray
        A VAWGAN state dict (checked against :func:`expected_shapes` by the caller).
    cfg : ModelConfig
    n_dims : int
    """

    def __init__(self, state_dict: Mapping[str, np.ndarray], cfg: Any, n_dims: int):
        def layers(prefix: str):
            out = []
            for i in range(cfg.n_layers + 1):
                w = np.asarray(state_dict[f"{prefix}.{2 * i}.weight"], dtype=np.float32)
                b = np.asarray(state_dict[f"{prefix}.{2 * i}.bias"], dtype=np.float32)
                out.append((np.ascontiguousarray(w.T), b))
            return out

        self.z_dim = int(cfg.z_dim)
        self.n_dims = int(n_dims)
        self.context = int(cfg.context)
        self.slope = np.float32(cfg.leaky_slope)
        self.variance = cfg.decoder_variance
        self.min_logvar = float(cfg.min_logvar)
        self.enc = layers("encoder.net")
        self.dec = layers("decoder.net")
        self.embed = np.asarray(state_dict["decoder.embed.weight"], dtype=np.float32)
        lv = state_dict.get("decoder.logvar")
        self.logvar = None if lv is None else np.asarray(lv, dtype=np.float32)

    def _mlp(self, h: np.ndarray, layers) -> np.ndarray:
        for i, (wt, b) in enumerate(layers):
            h = h @ wt
            h += b
            if i < len(layers) - 1:
                np.maximum(h, self.slope * h, out=h)
        return h

    def encode(self, x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Encoder input (..., (2 * context + 1) * n_dims) normalized -> posterior
        (mu, logvar), each (..., z_dim). With context, ``x`` holds windows
        (:func:`context_windows`)."""
        h = self._mlp(np.asarray(x, dtype=np.float32), self.enc)
        return h[..., :self.z_dim], h[..., self.z_dim:]

    def decode(self, z: np.ndarray, spk) -> Tuple[np.ndarray, np.ndarray]:
        """z (..., z_dim) and speaker ids (int or (...)) -> (mean, logvar) as the Decoder."""
        z = np.asarray(z, dtype=np.float32)
        e = self.embed[np.broadcast_to(np.asarray(spk), z.shape[:-1])]
        h = self._mlp(np.concatenate([z, e], axis=-1), self.dec)
        if self.variance == "frame":
            mean, lv = h[..., :self.n_dims], h[..., self.n_dims:]
        elif self.variance == "learned":
            mean, lv = h, self.logvar
        else:
            return h, np.zeros(self.n_dims, dtype=np.float32)
        lv = self.min_logvar + _softplus(lv - self.min_logvar)
        return mean, lv.astype(np.float32)

    def convert(self, x: np.ndarray, target) -> np.ndarray:
        """``VAWGAN.convert``: decoder mean of the posterior mean, (T, n_dims) float32.

        ``x`` (T, n_dims) is one utterance; with context its windows are built here.
        """
        mu, _ = self.encode(context_windows(np.asarray(x, dtype=np.float32), self.context))
        return self.decode(mu, target)[0]


# ----------------------------------------------------------------------------- the bundle
class Bundle:
    """A loaded model bundle (see :func:`load_bundle`).

    Attributes
    ----------
    path : Path
    kind : str
        ``"vae"`` or ``"vawgan"``.
    format_version : int
        1 (torch.save file) or 2.
    config : Config
    speakers : list of str
    stats : dict
        ``{speaker: SpeakerStats}`` (plain dicts when they are partial).
    train_info : dict
    vawgan_version : str
    state_dict : dict
        ``{key: ndarray}``, the weights (critic included).
    """

    def __init__(self, path: Path, obj: Dict[str, Any]):
        from .config import Config
        from .errors import ConfigError

        self.path = Path(path)
        self.kind = obj["kind"]
        self.format_version = int(obj.get("format_version", LEGACY_VERSION))
        self.vawgan_version = str(obj.get("vawgan_version", "?"))
        self.train_info = dict(obj.get("train_info") or {})
        try:
            self.config = Config.from_saved(obj["config"])
        except ConfigError as e:
            raise BundleError(f"{path}: bundle config is invalid ({e})") from None
        except Exception as e:  # not a mapping, ...
            raise BundleError(f"{path}: bundle config is invalid ({type(e).__name__})") from None
        self.speakers = [str(s) for s in obj["speakers"]]
        self._stats_raw = obj["stats"]
        for s in self.speakers:
            st = self._stats_raw.get(s) if isinstance(self._stats_raw, dict) else None
            if not isinstance(st, dict) or "mcep_mean" not in st or "mcep_std" not in st:
                raise BundleError(f"{path}: bundle has no mcep statistics for speaker {s}")
        self.stats = self._make_stats()
        try:
            self._mcep = {s: (np.asarray(self._stats_raw[s]["mcep_mean"], dtype=np.float64),
                              np.asarray(self._stats_raw[s]["mcep_std"], dtype=np.float64))
                          for s in self.speakers}
        except (TypeError, ValueError):
            raise BundleError(f"{path}: bundle mcep statistics are not numeric vectors") from None
        d = self._mcep[self.speakers[0]][0].shape
        if len(d) != 1 or any(m.shape != d or sd.shape != d for m, sd in self._mcep.values()):
            raise BundleError(f"{path}: bundle mcep statistics have inconsistent shapes")
        self.state_dict = dict(obj["state_dict"])
        self._check_weights()  # a weight mismatch is reported at load time
        self.generator = NumpyGenerator(self.state_dict, self.config.model, self.n_dims)
        self._model = None

    def _check_weights(self) -> None:
        want = expected_shapes(self.config.model, len(self.speakers), self.n_dims)
        missing = [k for k in want if k not in self.state_dict]
        unexpected = [k for k in self.state_dict if k not in want]
        msg = None
        if missing:
            msg = f"missing {missing[0]}" + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
        elif unexpected:
            msg = f"unexpected {unexpected[0]}"
        else:
            for k, shape in want.items():
                a = self.state_dict[k]
                if tuple(a.shape) != shape:
                    msg = f"{k} has shape {tuple(a.shape)}, expected {shape}"
                    break
                if a.dtype.kind != "f":
                    msg = f"{k} has dtype {a.dtype}, expected floating point"
                    break
        if msg is None:
            bad = [k for k in want if k.startswith(("encoder.", "decoder."))
                   and not np.all(np.isfinite(self.state_dict[k]))]
            if bad:
                msg = f"{bad[0]} has NaN or infinite values"
        if msg is not None:
            raise BundleError(f"{self.path}: weights do not match the bundle config ({msg})")

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
                f"version={self.vawgan_version!r}, format={self.format_version})")

    @property
    def n_dims(self) -> int:
        return int(self._mcep[self.speakers[0]][0].shape[0])

    @property
    def model(self):
        """The torch :class:`vawgan.model.VAWGAN` (CPU, eval mode), built on first use.

        Imports torch; conversion does not need it (:attr:`generator`).
        """
        if self._model is None:
            import torch

            from .model import build_model

            m = build_model(self.config.model, len(self.speakers), self.n_dims)
            sd = {k: torch.from_numpy(np.array(v)) for k, v in self.state_dict.items()}
            try:
                m.load_state_dict(sd)
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
        posterior mean is used (no sampling) and the decoder mean is returned. With
        ``model.context = k > 0`` the encoder sees each frame's window t-k..t+k of the
        normalized utterance, edge frames replicated. Runs in numpy
        (:class:`NumpyGenerator`), without torch.

        Parameters
        ----------
        body : ndarray, shape (T, D)
            Raw mel-cepstrum c1..c39 of the source: one whole utterance (silence
            included, as analysed) when the model has context.
        source_mean, source_std : ndarray, shape (D,)
            The source speaker's statistics (for a speaker unseen in training too).
        target : str
            A model speaker.

        Returns
        -------
        ndarray, shape (T, D), float64
            Raw c1..c39 of the target speaker.
        """
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
        x = ((body - source_mean) / source_std).astype(np.float32)
        y = self.generator.convert(x, tid).astype(np.float64)
        return y * t_std + t_mean


# ----------------------------------------------------------------------------- reading
def _check_header(path: Path, obj: Any) -> None:
    """BundleError unless ``obj`` is a bundle header of a format this vawgan reads."""
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise BundleError(f"{path}: not a vawgan model bundle")
    ver = obj.get("format_version")
    if not isinstance(ver, int) or isinstance(ver, bool):
        raise BundleError(f"{path}: bundle has no valid format_version")
    if ver > FORMAT_VERSION:
        raise BundleError(f"{path}: bundle format {ver} is newer than this vawgan reads "
                          f"({FORMAT_VERSION}); upgrade vawgan")


def _read_v2(path: Path, z: zipfile.ZipFile) -> Dict[str, Any]:
    try:
        meta = json.loads(z.read(META).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise BundleError(f"{path}: corrupt model bundle (unreadable {META})") from None
    _check_header(path, meta)
    missing = [k for k in _META_KEYS if k not in meta]
    if missing:
        raise BundleError(f"{path}: bundle lacks '{missing[0]}'")
    names = meta["arrays"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise BundleError(f"{path}: corrupt model bundle (bad array list)")
    arrays: Dict[str, np.ndarray] = {}
    for name in names:
        try:
            data = z.read(f"{name}.npy")
        except KeyError:
            raise BundleError(f"{path}: corrupt or truncated model bundle (no {name}.npy)") from None
        try:
            arrays[name] = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
        except Exception as e:
            raise BundleError(f"{path}: corrupt model bundle ({name}: {type(e).__name__})") from None
    if arrays_sha256(arrays) != meta["sha256"]:
        raise BundleError(f"{path}: corrupt model bundle (arrays do not match their sha256)")
    speakers = meta["speakers"]
    stats = meta["stats"]
    if isinstance(speakers, list) and isinstance(stats, dict):
        for i, s in enumerate(speakers):
            if isinstance(stats.get(s), dict):
                prefix = f"stats/{i}/"
                for name, a in arrays.items():
                    if name.startswith(prefix):
                        stats[s][name[len(prefix):]] = a
    meta["state_dict"] = {n[len("state_dict/"):]: a for n, a in arrays.items()
                          if n.startswith("state_dict/")}
    return meta


def _read_legacy(path: Path) -> Dict[str, Any]:
    """A format-1 ``torch.save`` file (imports torch)."""
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # zip errors, unpickling errors, EOF: all mean unusable
        raise BundleError(f"{path}: corrupt or truncated model bundle "
                          f"({type(e).__name__})") from None
    _check_header(path, obj)
    if "state_dict" in obj:
        sd = obj["state_dict"]
        if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
            raise BundleError(f"{path}: bundle state_dict is not a mapping of tensors")
        obj["state_dict"] = {k: _to_numpy(v) for k, v in sd.items()}
    return obj


def load_bundle(path: PathLike) -> Bundle:
    """Read a bundle written by :func:`save_bundle` (format 2) or by vawgan 0.1.0 (format 1).

    Format 2 is read without torch; format 1 imports torch.

    Raises
    ------
    BundleError
        One line naming the file: missing, corrupt/truncated, not a bundle, from a newer
        vawgan, or weights inconsistent with the config.
    """
    path = Path(path)
    if path.is_dir():
        raise BundleError(f"{path}: is a directory, not a model bundle")
    if not path.exists():
        raise BundleError(f"{path}: no such model bundle")
    if not os.access(path, os.R_OK):
        raise BundleError(f"{path}: permission denied")
    try:
        z: Optional[zipfile.ZipFile] = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        z = None
    except (OSError, EOFError, ValueError) as e:
        raise BundleError(f"{path}: corrupt or truncated model bundle "
                          f"({type(e).__name__})") from None
    if z is None:
        with open(path, "rb") as f:
            head = f.read(2)
        if not head.startswith(b"\x80"):  # a non-zip torch file is a pickle (PROTO opcode)
            raise BundleError(f"{path}: corrupt or truncated model bundle (BadZipFile)")
        obj = _read_legacy(path)
    else:
        with z:
            names = z.namelist()
            if META in names:
                try:
                    obj = _read_v2(path, z)
                except BundleError:
                    raise
                except Exception as e:  # bad CRC, bad deflate data, short member, ...
                    raise BundleError(f"{path}: corrupt model bundle ({type(e).__name__}: "
                                      f"{str(e).splitlines()[0][:80] if str(e) else ''})") from None
            elif any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
                obj = None  # a torch.save zip: format 1
            else:
                raise BundleError(f"{path}: not a vawgan model bundle")
        if obj is None:
            obj = _read_legacy(path)
    missing = [k for k in _KEYS if k not in obj]
    if missing:
        raise BundleError(f"{path}: bundle lacks '{missing[0]}'")
    if obj["kind"] not in KINDS:
        raise BundleError(f"{path}: unknown bundle kind {obj['kind']!r}")
    if not isinstance(obj["speakers"], list) or not obj["speakers"]:
        raise BundleError(f"{path}: bundle has no speakers")
    return Bundle(path, obj)


def upgrade_bundle(src: PathLike, dst: Optional[PathLike] = None) -> Path:
    """Re-save any readable bundle in the current format (``dst`` default: ``src``, atomically).

    The weights, config, speakers, statistics, kind, train_info and vawgan_version are
    kept; ``train_info["upgraded_from_format"]`` records an older format.
    """
    return _resave(load_bundle(src), Path(dst) if dst is not None else Path(src))


def _resave(b: Bundle, dst: Path) -> Path:
    info = dict(b.train_info)
    if b.format_version != FORMAT_VERSION:
        info.setdefault("upgraded_from_format", b.format_version)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": b.kind,
            "vawgan_version": b.vawgan_version, "config": b.config.to_dict(),
            "speakers": list(b.speakers), "train_info": info}
    _write_v2(dst, meta, b.state_dict, b._stats_raw, b.speakers)
    return dst


# ----------------------------------------------------------------------------- vawgan bundle-upgrade
def add_arguments(parser) -> None:
    parser.add_argument("bundles", nargs="+", type=Path,
                        help="bundles to re-save in the current format (in place, atomically)")
    parser.add_argument("--out", type=Path, default=None,
                        help="write here instead (only with one input bundle)")


def run(args) -> int:
    """``vawgan bundle-upgrade``: re-save old (torch.save) bundles as format 2."""
    from .errors import VawganError

    if args.out is not None and len(args.bundles) != 1:
        raise VawganError("--out works with one input bundle only")
    for src in args.bundles:
        b = load_bundle(src)
        dst = _resave(b, args.out or Path(src))
        print(f"{src} (format {b.format_version}) -> {dst} (format {FORMAT_VERSION})")
    return 0
