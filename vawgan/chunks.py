"""Long signals in pieces cut at pauses: bounded memory, time linear in length.

WORLD's Harvest holds whole-signal work arrays whose size grows faster than the
signal (a 120 s file: 1.2 GB), and one native call on ten minutes of speech cannot be
interrupted. :func:`plan_chunks` cuts a signal, or a frame sequence, into pieces of
about ``chunk_s`` seconds at the quietest frame near each nominal boundary; each piece
is analysed (or synthesised) with ``pad_s`` seconds of its neighbours on both sides and
only its own frames are kept, so a pause-cut join changes almost nothing (Harvest's f0
contour is continuous inside a voiced stretch, and none is cut; CheapTrick and D4C are
frame-local). Signals no longer than :data:`LONG_SECONDS` are never cut: their
features are exactly those of a whole-signal analysis.

Frame ``j`` of a signal lies at sample ``j * hop``; a signal of ``n`` samples has
``n // hop + 1`` frames (pyworld's convention).
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

#: signals up to this long are analysed and synthesised in one piece
LONG_SECONDS = 30.0
#: nominal length of a piece (Harvest on 10 s: ~1.5 s, so Ctrl-C acts within about that)
CHUNK_SECONDS = 10.0
#: a cut is placed at the quietest frame within this distance of the nominal boundary
SEARCH_SECONDS = 2.0
#: context analysed on each side of a piece and thrown away
PAD_SECONDS = 0.5


def plan_chunks(energy: np.ndarray, frames_per_s: float, chunk_s: Optional[float] = None,
                search_s: Optional[float] = None) -> List[Tuple[int, int]]:
    """Cut ``T`` frames into pieces ``[(a, b), ...]`` (covering 0..T, in order) at the
    quietest frame near every ``chunk_s`` seconds.

    Parameters
    ----------
    energy : ndarray, shape (T,)
        Any per-frame loudness (power, or power in dB); lower = better place to cut.
    frames_per_s : float
    chunk_s, search_s : float, optional
        Default :data:`CHUNK_SECONDS`, :data:`SEARCH_SECONDS`.

    Returns
    -------
    list of (int, int)
        Frame ranges; one range ``(0, T)`` when ``T`` is within one piece.
    """
    chunk_s = CHUNK_SECONDS if chunk_s is None else chunk_s
    search_s = SEARCH_SECONDS if search_s is None else search_s
    t = len(energy)
    chunk = max(1, int(round(chunk_s * frames_per_s)))
    search = max(0, min(int(round(search_s * frames_per_s)), chunk // 2))
    e = np.asarray(energy, dtype=np.float64)
    if len(e) >= 5:  # 5-frame smoothing: a cut in a pause, not in a stop closure
        e = np.convolve(e, np.ones(5) / 5, mode="same")
    cuts = [0]
    while t - cuts[-1] > chunk + search:
        lo, hi = cuts[-1] + chunk - search, cuts[-1] + chunk + search + 1
        cuts.append(lo + int(np.argmin(e[lo:hi])))
    cuts.append(t)
    return list(zip(cuts[:-1], cuts[1:]))


def frame_energy(x: np.ndarray, hop: int) -> np.ndarray:
    """Mean power of each hop-long block of ``x``, one value per frame (``n // hop + 1``)."""
    n_blocks = len(x) // hop
    e = np.zeros(n_blocks + 1)
    rows = x[: n_blocks * hop].reshape(n_blocks, hop)
    step = 1 << 16  # rows at a time: no whole-signal temporary
    for i in range(0, n_blocks, step):
        r = rows[i: i + step].astype(np.float64)
        e[i: i + len(r)] = np.einsum("ij,ij->i", r, r) / hop
    if len(x) % hop:
        e[n_blocks] = float(np.mean(np.square(x[n_blocks * hop:], dtype=np.float64)))
    return e


def pieces(energy: np.ndarray, frames_per_s: float) -> List[Tuple[int, int, int, int]]:
    """:func:`plan_chunks` with the context of each piece: ``[(a, b, s0, s1), ...]``.

    Frames ``a..b`` are the piece's own; ``s0..s1`` (``a..b`` widened by
    :data:`PAD_SECONDS` on each side, within ``0..T``) is what is analysed or
    synthesised, of which rows ``a - s0 .. b - s0`` are kept.
    """
    t = len(energy)
    pad = int(round(PAD_SECONDS * frames_per_s))
    return [(a, b, max(0, a - pad), min(t, b + pad)) for a, b in plan_chunks(energy, frames_per_s)]
