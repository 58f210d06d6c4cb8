"""Export the conversion graph of a :class:`~vawgan.model.VAWGAN` to ONNX.

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

Importing this module imports torch; only training (bundle writing) does.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings

import torch

from .bundle import INPUTS, OUTPUT
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
