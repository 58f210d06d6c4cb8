"""Which matrix-product precision training uses (``train.precision``).

bf16 autocast roughly halves a training step on hardware that multiplies bf16
natively, and doubles it where bf16 is only emulated: oneDNN's own check,
``torch.ops.mkldnn._is_mkldnn_bf16_supported()``, is True on any AVX-512 CPU, including
Intel Ice Lake, which has no bf16 instructions (a 256-frame MLP step measured 12.9 ms
in bf16 against 5.2 ms in fp32 there). ``"auto"`` therefore decides from what the
processor really has:

- CUDA: bf16 where the device supports it (``torch.cuda.is_bf16_supported()``).
- x86-64 CPU: bf16 only with the AVX512-BF16 or AMX-BF16 instructions (the CPU flags
  ``avx512_bf16`` / ``amx_bf16``).
- Arm CPU: bf16 with the BF16 extension (flag ``bf16``).
- CPU flags unreadable (not Linux): a short timing of both precisions on a step of the
  model's size, keeping bf16 only when it is clearly faster.
"""

from __future__ import annotations

import functools
import platform
import time
from typing import Optional, Tuple

import torch

PRECISIONS = ("auto", "fp32", "bf16")
#: CPU flags (``/proc/cpuinfo``) of native bf16 matrix products
BF16_FLAGS_X86 = ("avx512_bf16", "amx_bf16")
BF16_FLAGS_ARM = ("bf16",)
#: bf16 must beat fp32 by this factor in the timing fallback
TIMING_MARGIN = 1.15


def cpu_flags(path: str = "/proc/cpuinfo") -> Optional[frozenset]:
    """The processor's feature flags (``flags`` on x86, ``Features`` on Arm), or None
    where they cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, val = line.partition(":")
                if key.strip().lower() in ("flags", "features"):
                    return frozenset(val.split())
    except OSError:
        return None
    return None


def cpu_bf16_from_flags(flags: Optional[frozenset], machine: Optional[str] = None
                        ) -> Optional[bool]:
    """True/False from the CPU flags, None when they do not tell."""
    if not flags:
        return None
    m = (machine or platform.machine()).lower()
    if m in ("aarch64", "arm64"):
        return any(f in flags for f in BF16_FLAGS_ARM)
    return any(f in flags for f in BF16_FLAGS_X86)


def _time_step(dtype: Optional[torch.dtype], reps: int = 5) -> float:
    """Best time of a 256 x 256 three-layer MLP forward + backward (the size of the
    model's steps), under bf16 autocast or in fp32 (``dtype`` None)."""
    g = torch.Generator().manual_seed(0)
    ws = [torch.randn(256, 256, generator=g, requires_grad=True) for _ in range(3)]
    x = torch.randn(256, 256, generator=g)
    best = float("inf")
    for i in range(reps + 1):
        t = time.perf_counter()
        ctx = (torch.autocast("cpu", dtype=dtype) if dtype is not None
               else torch.autocast("cpu", enabled=False))
        with ctx:
            h = x
            for w in ws:
                h = torch.nn.functional.leaky_relu(h @ w, 0.2)
        h.float().square().mean().backward()
        if i:  # the first run warms up
            best = min(best, time.perf_counter() - t)
    return best


@functools.lru_cache(maxsize=None)
def cpu_bf16_native() -> Tuple[bool, str]:
    """Whether this CPU multiplies bf16 natively, and how that was decided."""
    try:
        onednn = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # pragma: no cover - builds without oneDNN
        onednn = False
    if not onednn:
        return False, "no oneDNN bf16"
    flags = cpu_flags()
    native = cpu_bf16_from_flags(flags)
    if native is not None:
        if native:
            have = sorted(f for f in BF16_FLAGS_X86 + BF16_FLAGS_ARM if f in flags)
            return True, "CPU flags " + ", ".join(have)
        return False, ("CPU flags " + "/".join(BF16_FLAGS_X86) + " absent: bf16 would be "
                       "emulated, slower than fp32")
    fp32, bf16 = _time_step(None), _time_step(torch.bfloat16)
    faster = fp32 / bf16 >= TIMING_MARGIN
    return faster, f"timed: bf16 {bf16 * 1e3:.2f} ms vs fp32 {fp32 * 1e3:.2f} ms a step"


def resolve_precision(name: str, device) -> str:
    """``"fp32"``, ``"bf16"``, or for ``"auto"``: bf16 where the hardware multiplies bf16
    natively (see the module docstring), else fp32.

    bf16 applies to the matrix products (autocast); parameters, optimizer states, losses
    and the gradient-penalty norm stay float32.
    """
    return resolve_precision_why(name, device)[0]


def resolve_precision_why(name: str, device) -> Tuple[str, str]:
    """:func:`resolve_precision` and the reason, e.g. ``("fp32", "CPU flag ... absent")``."""
    if name not in PRECISIONS:
        raise ValueError(f"precision {name!r}: use auto, fp32 or bf16")
    if name != "auto":
        return name, "set in the configuration"
    dev = torch.device(device)
    if dev.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        return ("bf16" if ok else "fp32"), f"CUDA bf16 {'supported' if ok else 'unsupported'}"
    native, why = cpu_bf16_native()
    return ("bf16" if native else "fp32"), why
