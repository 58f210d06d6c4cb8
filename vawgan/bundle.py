"""The model bundle: one file with everything conversion needs, run without torch.

A bundle (written by :func:`vawgan.export.save_bundle`, see docs/design.md) is a zip of::

    vawgan_bundle.json      {"format": "vawgan-bundle", "format_version": 3,
                             "kind": "vae" | "vawgan", "vawgan_version": "0.1.0",
                             "config": {...resolved Config...},
                             "speakers": [names; index = speaker id],
                             "stats": {speaker: scalar fields of SpeakerStats},
                             "train_info": {..., "precision": "fp32" | "bf16"},
                             "graph": {"inputs": ["x", "target"], "output": "y"},
                             "arrays": [member names]}
    model.onnx              the conversion graph (:mod:`vawgan.export`)
    state_dict/<key>.npy    the VAWGAN weights (critic included), for training code
    stats/<i>/<field>.npy   vector fields (mcep_mean, mcep_std, gv, ms) of speaker i
    sha256                  hex digest of every other member, names and bytes

Conversion runs ``model.onnx`` with onnxruntime (CPU provider): importing this module,
:func:`load_bundle` and :meth:`Bundle.convert_body` import neither torch nor pysptk.
The weights are kept as arrays too, for :attr:`Bundle.model` (the torch module: tests,
``vawgan train --init-vae``). ``kind == "vae"`` is the VAE after phase 1 (the
over-smoothed baseline), ``"vawgan"`` the final adversarially trained model.

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
import threading
import zipfile
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

import numpy as np

from .errors import BundleError, ConfigError
from .io import PathLike

FORMAT = "vawgan-bundle"
FORMAT_VERSION = 3
KINDS = ("vae", "vawgan")
META = "vawgan_bundle.json"
GRAPH = "model.onnx"
DIGEST = "sha256"
#: inputs of the conversion graph, in order: x float32 (T, D), target int64 ()
INPUTS = ("x", "target")
#: output of the conversion graph: y float32 (T, D)
OUTPUT = "y"
#: frames per run of the conversion graph (longer inputs go in overlapping blocks)
GRAPH_BLOCK = 20000
#: the members of a bundle may expand to at most this many bytes in all
MAX_BYTES = 256 * 1024 * 1024
#: plausible mean pitch of a speaker (Hz), checked on the stored log-f0 means
PITCH_RANGE_HZ = (30.0, 1000.0)
LF0_RANGE = (float(np.log(PITCH_RANGE_HZ[0])), float(np.log(PITCH_RANGE_HZ[1])))
_META_KEYS = ("kind", "config", "speakers", "stats", "train_info", "graph", "arrays")


# ----------------------------------------------------------------------------- digest
def members_sha256(members: Iterable[Tuple[str, bytes]]) -> str:
    """Digest of named members: each name, size and bytes, in the given order."""
    h = hashlib.sha256()
    for name, data in members:
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


# ----------------------------------------------------------------------------- the bundle
class Bundle:
    """A loaded model bundle (see :func:`load_bundle`).

    Attributes
    ----------
    path : Path
    kind : str
        ``"vae"`` or ``"vawgan"``.
    format_version : int
    config : Config
    speakers : list of str
    stats : dict
        ``{speaker: SpeakerStats}``, checked at load.
    train_info : dict
    vawgan_version : str
    state_dict : dict
        ``{key: ndarray}``, the weights (critic included).
    session : onnxruntime.InferenceSession
        The conversion graph (with ``background=True`` made by a thread started at
        load; the first use waits for it and raises its BundleError, if any).
    """

    def __init__(self, path: Path, meta: Dict[str, Any], graph: bytes,
                 arrays: Dict[str, np.ndarray], threads: int = 1, background: bool = False):
        from .config import Config
        from .stats import SpeakerStats

        self.path = Path(path)
        self.kind = meta["kind"]
        if self.kind not in KINDS:
            raise BundleError(f"{path}: unknown bundle kind {self.kind!r}")
        self.format_version = int(meta["format_version"])
        self.vawgan_version = str(meta.get("vawgan_version", "?"))
        self.train_info = meta["train_info"]
        if not isinstance(self.train_info, dict):
            raise BundleError(f"{path}: bundle train_info is not a mapping")
        try:
            self.config = Config.from_dict(meta["config"])
        except ConfigError as e:
            raise BundleError(f"{path}: bundle config is invalid ({e})") from None
        except Exception as e:  # not a mapping, ...
            raise BundleError(f"{path}: bundle config is invalid ({type(e).__name__})") from None
        speakers = meta["speakers"]
        if (not isinstance(speakers, list) or not speakers
                or not all(isinstance(s, str) and s for s in speakers)):
            raise BundleError(f"{path}: bundle has no speakers (a list of names)")
        if len(set(speakers)) != len(speakers):
            raise BundleError(f"{path}: bundle speaker names are not unique")
        self.speakers = list(speakers)
        self.stats = {}
        raw = meta["stats"]
        for i, s in enumerate(self.speakers):
            fields = raw.get(s) if isinstance(raw, dict) else None
            if not isinstance(fields, dict):
                raise BundleError(f"{path}: bundle has no statistics for speaker {s}")
            prefix = f"stats/{i}/"
            fields = dict(fields, **{n[len(prefix):]: a for n, a in arrays.items()
                                     if n.startswith(prefix)})
            try:
                st = SpeakerStats.from_dict(fields, where=f"speaker {s}")
            except (KeyError, TypeError, ValueError) as e:
                msg = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
                raise BundleError(f"{path}: bundle statistics are invalid ({msg})") from None
            if not LF0_RANGE[0] <= st.lf0_mean <= LF0_RANGE[1]:
                raise BundleError(f"{path}: bundle statistics are invalid (speaker {s}: "
                                  f"lf0_mean {st.lf0_mean:g} is not the log of a pitch in "
                                  f"{PITCH_RANGE_HZ[0]:g}..{PITCH_RANGE_HZ[1]:g} Hz)")
            self.stats[s] = st
        dims = {st.dim for st in self.stats.values()}
        if len(dims) != 1:
            raise BundleError(f"{path}: bundle statistics have inconsistent shapes")
        bins = self.config.stats.ms_fft // 2 + 1  # the MS postfilter and metrics need them equal
        for s, st in self.stats.items():
            if st.ms.shape[0] != bins:
                raise BundleError(f"{path}: bundle statistics are invalid (speaker {s}: ms has "
                                  f"{st.ms.shape[0]} bins, stats.ms_fft "
                                  f"{self.config.stats.ms_fft} needs {bins})")
        self.state_dict = {n[len("state_dict/"):]: a for n, a in arrays.items()
                           if n.startswith("state_dict/")}
        self._model = None
        args = (self.path, graph, meta["graph"], self.n_dims, threads)
        if background:
            self._session_result: List[Any] = []
            self._session_thread: Optional[threading.Thread] = threading.Thread(
                target=self._make_session, args=args, daemon=True)
            self._session_thread.start()
        else:
            self._session_thread = None
            self._session = _session(*args)

    def _make_session(self, *args) -> None:
        try:
            self._session_result.append(_session(*args))
        except BaseException as e:  # re-raised in the caller's thread by .session
            self._session_result.append(e)

    @property
    def session(self):
        """The onnxruntime session of the conversion graph (see the class docstring)."""
        if self._session_thread is not None:
            self._session_thread.join()
            self._session_thread = None
            result = self._session_result.pop()
            if isinstance(result, BaseException):
                raise result
            self._session = result
        return self._session

    def __repr__(self) -> str:
        return (f"Bundle({str(self.path)!r}, kind={self.kind!r}, speakers={self.speakers}, "
                f"version={self.vawgan_version!r}, format={self.format_version})")

    @property
    def n_dims(self) -> int:
        return int(self.stats[self.speakers[0]].dim)

    @property
    def model(self):
        """The torch :class:`vawgan.model.VAWGAN` (CPU, eval mode), built on first use.

        Imports torch; conversion does not need it (:attr:`session`).
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

    def mcep_stats(self, name: str) -> Tuple[np.ndarray, np.ndarray]:
        """(mcep_mean (D,), mcep_std (D,)) of a model speaker."""
        self.speaker_id(name)  # BundleError listing the speakers when unknown
        st = self.stats[name]
        return st.mcep_mean, st.mcep_std

    def run_graph(self, x: np.ndarray, target_id: int) -> np.ndarray:
        """The conversion graph on normalized frames of one utterance.

        Parameters
        ----------
        x : ndarray, shape (T, D)
            Source frames z-scored with the source statistics, T >= 1.
        target_id : int
            Index into :attr:`speakers`.

        Returns
        -------
        ndarray, shape (T, D), float32
            Target frames in the target's z-scored units.
        """
        x = np.ascontiguousarray(x, dtype=np.float32)
        tid = np.array(target_id, dtype=np.int64)
        if len(x) <= GRAPH_BLOCK:
            return self.session.run(None, {"x": x, "target": tid})[0]
        # long input: blocks overlapping by the receptive field (the hidden activations
        # of an hour of frames would take GBs); every output frame sees the same
        # neighbours as in one run, so the result is the same
        r = self.config.model.receptive_radius()
        y = np.empty_like(x)
        for a in range(0, len(x), GRAPH_BLOCK):
            b = min(len(x), a + GRAPH_BLOCK)
            s0, s1 = max(0, a - r), min(len(x), b + r)
            y[a:b] = self.session.run(None, {"x": x[s0:s1], "target": tid})[0][a - s0: b - s0]
        return y

    def convert_body(self, body: np.ndarray, source_mean: np.ndarray, source_std: np.ndarray,
                     target: str) -> np.ndarray:
        """Convert raw c1..c39 of any source to the target speaker.

        ``y = graph((x - m_src) / s_src, target) * s_tgt + m_tgt``, where the graph
        (:class:`vawgan.model.ConversionGraph`) encodes with the posterior mean (no
        sampling) and returns the decoder mean. With ``model.context = k > 0`` the
        encoder sees each frame's window t-k..t+k of the normalized utterance, edge
        frames replicated.

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
        t_mean, t_std = self.mcep_stats(target)
        if body.shape[0] == 0:
            return np.zeros((0, d))
        x = body - source_mean
        x /= source_std  # in place: an hour of frames is 225 MB an array
        y = self.run_graph(x, tid)
        del x
        y = y.astype(np.float64)
        y *= t_std
        y += t_mean
        return y


def _session(path: Path, graph: bytes, spec: Any, n_dims: int, threads: int):
    """An onnxruntime CPU session of ``graph``, checked against the bundle's signature."""
    import onnxruntime as ort

    if not isinstance(spec, dict) or spec.get("inputs") != list(INPUTS) \
            or spec.get("output") != OUTPUT:
        raise BundleError(f"{path}: bundle graph signature is not {list(INPUTS)} -> {OUTPUT}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        msg = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise BundleError(f"{path}: corrupt model graph ({msg})") from None
    ins, outs = sess.get_inputs(), sess.get_outputs()
    names = ([i.name for i in ins], [o.name for o in outs])
    if names != (list(INPUTS), [OUTPUT]):
        raise BundleError(f"{path}: model graph has inputs {names[0]} and outputs {names[1]}, "
                          f"expected {list(INPUTS)} -> {OUTPUT}")
    if list(ins[0].shape)[1:] != [n_dims] or list(outs[0].shape)[1:] != [n_dims]:
        raise BundleError(f"{path}: model graph converts frames of shape {ins[0].shape[1:]}, "
                          f"the statistics have {n_dims} dims")
    return sess


# ----------------------------------------------------------------------------- reading
def _read_members(path: Path, z: zipfile.ZipFile) -> Dict[str, bytes]:
    infos = z.infolist()
    total = sum(i.file_size for i in infos)
    if total > MAX_BYTES:
        raise BundleError(f"{path}: bundle members expand to {total / 2**20:.0f} MiB "
                          f"(at most {MAX_BYTES // 2**20} MiB)")
    members: Dict[str, bytes] = {}
    for info in infos:
        if info.filename in members:
            raise BundleError(f"{path}: corrupt model bundle (member {info.filename} twice)")
        with z.open(info) as f:
            data = f.read(info.file_size + 1)
        if len(data) != info.file_size:
            raise BundleError(f"{path}: corrupt model bundle ({info.filename}: size)")
        members[info.filename] = data
    return members


def _parse(path: Path, members: Dict[str, bytes]):
    if META not in members:
        raise BundleError(f"{path}: not a vawgan model bundle")
    try:
        meta = json.loads(members[META].decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise BundleError(f"{path}: corrupt model bundle (unreadable {META})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BundleError(f"{path}: not a vawgan model bundle")
    ver = meta.get("format_version")
    if not isinstance(ver, int) or isinstance(ver, bool):
        raise BundleError(f"{path}: bundle has no valid format_version")
    if ver > FORMAT_VERSION:
        raise BundleError(f"{path}: bundle format {ver} is newer than this vawgan reads "
                          f"({FORMAT_VERSION}); upgrade vawgan")
    if ver < FORMAT_VERSION:
        raise BundleError(f"{path}: bundle format {ver} is from an older vawgan; "
                          f"re-train or re-export it (this vawgan reads format {FORMAT_VERSION})")
    if DIGEST not in members:
        raise BundleError(f"{path}: corrupt model bundle (no {DIGEST})")
    digest = members.pop(DIGEST).decode("ascii", "replace").strip()
    if members_sha256(members.items()) != digest:
        raise BundleError(f"{path}: corrupt or edited model bundle (members do not match "
                          f"their {DIGEST})")
    missing = [k for k in _META_KEYS if k not in meta]
    if missing:
        raise BundleError(f"{path}: bundle lacks '{missing[0]}'")
    if GRAPH not in members:
        raise BundleError(f"{path}: corrupt model bundle (no {GRAPH})")
    names = meta["arrays"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise BundleError(f"{path}: corrupt model bundle (bad array list)")
    arrays: Dict[str, np.ndarray] = {}
    for name in names:
        data = members.get(f"{name}.npy")
        if data is None:
            raise BundleError(f"{path}: corrupt or truncated model bundle (no {name}.npy)")
        try:
            arrays[name] = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
        except Exception as e:
            raise BundleError(f"{path}: corrupt model bundle ({name}: {type(e).__name__})") from None
    return meta, members[GRAPH], arrays


def load_bundle(path: PathLike, threads: int = 1, background: bool = False) -> Bundle:
    """Read and check a bundle written by :func:`vawgan.export.save_bundle` (no torch).

    Parameters
    ----------
    path : path
    threads : int
        onnxruntime intra-op threads of the conversion session (1 suits batch jobs that
        convert one file per worker).
    background : bool
        Import onnxruntime and build the session in a thread, so that it overlaps the
        caller's next work (``vawgan-convert``: the WORLD analysis of the input). A bad
        graph is then reported at the first use of :attr:`Bundle.session`, still as a
        BundleError; every other check is done here.

    Raises
    ------
    BundleError
        One line naming the file: missing, corrupt/truncated/edited (sha256), not a
        bundle, from another vawgan format, invalid statistics or graph.
    """
    path = Path(path)
    if int(threads) < 1:
        raise ValueError(f"load_bundle: threads={threads} must be >= 1")
    if path.is_dir():
        raise BundleError(f"{path}: is a directory, not a model bundle")
    if not path.exists():
        raise BundleError(f"{path}: no such model bundle")
    if not os.access(path, os.R_OK):
        raise BundleError(f"{path}: permission denied")
    try:
        z = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise BundleError(f"{path}: not a vawgan model bundle (not a zip file)") from None
    except Exception as e:  # EOF, ...
        raise BundleError(f"{path}: corrupt or truncated model bundle "
                          f"({type(e).__name__})") from None
    try:
        with z:
            members = _read_members(path, z)
    except BundleError:
        raise
    except Exception as e:  # bad CRC (BadZipFile), bad deflate data, EOF, ...
        msg = str(e).splitlines()[0][:80] if str(e) else ""
        raise BundleError(f"{path}: corrupt or truncated model bundle "
                          f"({type(e).__name__}{': ' + msg if msg else ''})") from None
    meta, graph, arrays = _parse(path, members)
    return Bundle(path, meta, graph, arrays, threads, background)
