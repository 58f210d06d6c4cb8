"""Export the conversion graph of a :class:`~vawgan.model.VAWGAN` to ONNX; write bundles.

The graph is :class:`vawgan.model.ConversionGraph` (encoder posterior mean, context
windows included, and decoder mean for a target id), exported with torch's ONNX
exporter (``torch.onnx.export(..., dynamo=True)``) with a dynamic number of frames.
:mod:`vawgan.bundle` stores it as ``model.onnx`` and runs it with onnxruntime, so
conversion needs neither torch nor inference code of its own: any architecture that
torch can export converts.

Graph signature (:data:`vawgan.bundle.INPUTS`, :data:`vawgan.bundle.OUTPUT`)::

    x       float32 (T, n_dims)   source frames, z-scored with the source statistics
    target  int64   ()            target speaker id (index into the bundle's speakers)
    y       float32 (T, n_dims)   converted frames, z-scored with the target statistics

:func:`save_bundle` writes the bundle (the format is :mod:`vawgan.bundle`'s, which reads
it). Importing this module imports torch; only training (bundle writing) does.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
import zipfile
from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import torch

from .bundle import (DIGEST, FORMAT, FORMAT_VERSION, GRAPH, INPUTS, KINDS, META, OUTPUT,
                     members_sha256)
from .io import PathLike, atomic_path
from .model import VAWGAN, ConversionGraph

#: ONNX opset of exported graphs
OPSET = 18


@contextlib.contextmanager
def _quiet():
    """Silence the exporter's progress prints, warnings and log lines."""
    names = ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


def export_onnx(model: VAWGAN) -> bytes:
    """The serialized ONNX model of ``model``'s conversion graph (CPU, float32).

    Parameters
    ----------
    model : VAWGAN
        Any device or dtype; it is copied to CPU float32 and left unchanged.

    Returns
    -------
    bytes
        An ONNX ``ModelProto`` with inputs :data:`INPUTS` and output :data:`OUTPUT`.
    """
    if not isinstance(model, VAWGAN):
        raise TypeError(f"export_onnx: expected a VAWGAN, got {type(model).__name__}")
    cpu = VAWGAN(model.cfg, model.n_speakers, model.n_dims)
    cpu.load_state_dict({k: v.detach().to("cpu", torch.float32)
                         for k, v in model.state_dict().items()})
    graph = ConversionGraph(cpu.eval())
    # a trace length above the encoder window, so no size is specialized
    n = 2 * max(int(model.cfg.context), 1) + 3
    example = (torch.zeros(n, model.n_dims), torch.tensor(0, dtype=torch.long))
    frames = torch.export.Dim("frames", min=1)
    with _quiet():
        program = torch.onnx.export(graph, example, input_names=list(INPUTS),
                                    output_names=[OUTPUT], opset_version=OPSET,
                                    dynamic_shapes=({0: frames}, None), dynamo=True,
                                    verbose=False, optimize=True)
    return program.model_proto.SerializeToString()


# ----------------------------------------------------------------------------- bundles
def _to_numpy(v: Any) -> np.ndarray:
    """A tensor (any device, bf16 too) or array-like -> a numpy array."""
    if hasattr(v, "detach"):
        v = v.detach().cpu()
        if str(v.dtype) == "torch.bfloat16":
            v = v.float()
        return v.numpy().copy()
    return np.array(v)


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def _json_default(v: Any):
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if hasattr(v, "tolist"):  # a tensor
        return v.tolist()
    return str(v)


def save_bundle(path: PathLike, *, model: Any, config: Any, speakers: List[str],
                stats: Mapping[str, Any], kind: str,
                train_info: Optional[Mapping[str, Any]] = None) -> None:
    """Write a bundle atomically: the ONNX conversion graph, weights, statistics, metadata.

    Imports torch (for the export).

    Parameters
    ----------
    path : path
    model : VAWGAN
        The trained model (any device); its conversion graph is exported to ONNX
        (:func:`vawgan.export.export_onnx`) and its ``state_dict`` stored as arrays.
    config : Config or dict
        The resolved configuration.
    speakers : list of str
        Index = speaker id.
    stats : mapping
        ``{speaker: SpeakerStats | dict}`` (the fields of :class:`vawgan.stats.SpeakerStats`).
    kind : {"vae", "vawgan"}
    train_info : mapping, optional
        Steps, final losses, data size, precision, ... (JSON; numpy values become
        lists/numbers).
    """
    from . import __version__

    if kind not in KINDS:
        raise ValueError(f"save_bundle: kind={kind!r}, expected one of {KINDS}")
    speakers = [str(s) for s in speakers]
    if not speakers or len(set(speakers)) != len(speakers):
        raise ValueError(f"save_bundle: speakers must be unique and non-empty, got {speakers}")
    if model.n_speakers != len(speakers):
        raise ValueError(f"save_bundle: the model has {model.n_speakers} speakers, "
                         f"{len(speakers)} names given")
    cfg = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    bins = int(cfg.get("stats", {}).get("ms_fft", 256)) // 2 + 1
    for s in speakers:
        if s not in stats:
            raise ValueError(f"save_bundle: no statistics for speaker {s}")
        ms = stats[s].ms if hasattr(stats[s], "ms") else stats[s].get("ms")
        if ms is not None and len(ms) != bins:  # load_bundle would refuse it
            raise ValueError(f"save_bundle: speaker {s}'s ms has {len(ms)} bins, "
                             f"stats.ms_fft needs {bins}")
    arrays: Dict[str, np.ndarray] = {f"state_dict/{k}": _to_numpy(v)
                                     for k, v in model.state_dict().items()}
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
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
            "vawgan_version": __version__, "config": cfg, "speakers": speakers,
            "stats": stats_meta, "train_info": dict(train_info or {}),
            "graph": {"inputs": list(INPUTS), "output": OUTPUT}, "arrays": list(arrays)}
    members = [(META, json.dumps(meta, indent=1, default=_json_default,
                                 allow_nan=False).encode("utf-8")),
               (GRAPH, export_onnx(model))]
    members += [(f"{name}.npy", _npy(a)) for name, a in arrays.items()]
    with atomic_path(path, suffix=".zip") as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z:  # fast to load
            for name, data in members:
                z.writestr(name, data)
            z.writestr(DIGEST, members_sha256(members) + "\n")
