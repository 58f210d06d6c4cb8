"""Whole training steps captured in CUDA graphs (``train.cuda_graph``, CUDA only).

At batch 256 the networks are small and a training step is a few hundred short
kernels, so on a GPU the host-side launch overhead dominates. :class:`GraphedSteps`
runs the first ``warmup`` steps of each phase eagerly (on a side stream, as CUDA
graph capture requires), then captures one whole step of that phase -- batch sampling,
the forward passes, the gradient penalty's double backward and the optimizer steps
(``capturable`` Adam) -- into a :class:`torch.cuda.CUDAGraph` and replays it for
every later step. The random generator of the sampler is registered with the graph,
so each replay draws new batches and noise.

If capture fails for any reason the trainer warns once and falls back to eager steps.
"""

from __future__ import annotations

import warnings
from typing import Callable, Dict

import torch

from .trainstep import Metrics, StepRunner


class GraphedSteps:
    """Per-phase CUDA-graph replay of :class:`StepRunner` steps.

    Parameters
    ----------
    runner : StepRunner
        On a CUDA device, with capturable optimizers.
    warmup : int
        Eager steps per phase before capture.
    """

    def __init__(self, runner: StepRunner, warmup: int = 3):
        if runner.device.type != "cuda":
            raise ValueError("GraphedSteps: the runner is not on a CUDA device")
        self.r = runner
        self.warmup = int(warmup)
        self.graphs: Dict[int, torch.cuda.CUDAGraph] = {}
        self.outputs: Dict[int, Metrics] = {}
        self.eager_done: Dict[int, int] = {}
        self.failed = False
        self.stream = torch.cuda.Stream()

    def _body(self, phase: int) -> Callable[[], Metrics]:
        if phase == 1:
            return self.r.vae_step
        if phase == 2:
            return lambda: self.r.critic_steps(1)
        return self.r.gan_step_body

    def step(self, phase: int) -> Metrics:
        """Run one step of ``phase`` (1, 2, 3); returns its metrics (device tensors)."""
        out = self._step(phase)
        if phase == 3:
            self.r.after_gan_step()
        return out

    def _step(self, phase: int) -> Metrics:
        body = self._body(phase)
        if self.failed:
            return body()
        g = self.graphs.get(phase)
        if g is not None:
            g.replay()
            return {k: v.clone() for k, v in self.outputs[phase].items()}
        if self.eager_done.get(phase, 0) < self.warmup:
            self.eager_done[phase] = self.eager_done.get(phase, 0) + 1
            self.stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self.stream):
                out = body()
            torch.cuda.current_stream().wait_stream(self.stream)
            return out
        # capture (records, does not run), then replay once for this step; graphs of
        # earlier phases never run again: free their memory pools
        for p in [p for p in self.graphs if p < phase]:
            del self.graphs[p], self.outputs[p]
        for opt in (self.r.opt_enc, self.r.opt_dec, self.r.opt_critic):
            opt.zero_grad(set_to_none=True)
        g = torch.cuda.CUDAGraph()
        try:
            g.register_generator_state(self.r.gen)
            with torch.cuda.graph(g, stream=self.stream):
                out = body()
        except Exception as e:  # pragma: no cover - depends on the CUDA stack
            warnings.warn(f"CUDA graph capture failed ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:120]}); training continues eagerly")
            self.failed = True
            torch.cuda.synchronize()
            return body()
        self.graphs[phase] = g
        self.outputs[phase] = out
        g.replay()
        return {k: v.clone() for k, v in out.items()}
