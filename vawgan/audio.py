"""Reading and writing audio, with a clear one-line error for every unusable input.

Anything soundfile reads (WAV, FLAC, OGG, ...; 8/16/24/32-bit integer or float
samples; any channel count; any sample rate) is accepted, mixed to mono and
resampled (librosa, soxr) to the working rate.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from .errors import AudioError
from .io import PathLike, atomic_path

#: a signal whose peak is below this (about -90 dBFS) is treated as silence
SILENCE_PEAK = 3e-5
#: fraction of samples at full scale above which the input is reported as clipped
CLIP_FRACTION = 1e-3


class ClippingWarning(UserWarning):
    """The input has many full-scale samples; it is processed anyway."""


def read_audio(path: PathLike) -> Tuple[np.ndarray, int]:
    """Read ``path`` as float64 mono in [-1, 1] at its own rate, validating it.

    Returns
    -------
    x : ndarray, shape (n_samples,)
    fs : int
    """
    import soundfile as sf

    path = Path(path)
    if path.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    if not path.exists():
        raise AudioError(path, "no such file")
    if not os.access(path, os.R_OK):
        raise AudioError(path, "permission denied")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    try:
        x, fs = sf.read(str(path), dtype="float64", always_2d=True)
    except (RuntimeError, sf.LibsndfileError if hasattr(sf, "LibsndfileError") else RuntimeError) as e:
        raise AudioError(path, f"not a readable audio file ({str(e).splitlines()[0][:120]})") from None
    except Exception as e:  # soundfile raises assorted types on garbage input
        raise AudioError(path, f"not a readable audio file ({type(e).__name__})") from None
    if x.shape[0] == 0:
        raise AudioError(path, "contains no samples (zero-length audio)")
    x = x.mean(axis=1) if x.shape[1] > 1 else x[:, 0]
    if not np.all(np.isfinite(x)):
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise AudioError(path, f"contains {bad} NaN or infinite samples")
    return x, int(fs)


def check_signal(x: np.ndarray, fs: int, path: Optional[PathLike] = None,
                 min_seconds: float = 0.0) -> None:
    """Raise :class:`AudioError` for silent/short signals; warn when clipped."""
    if x.ndim != 1:
        raise AudioError(path, f"expected a mono signal, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise AudioError(path, "contains NaN or infinite samples")
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak < SILENCE_PEAK:
        raise AudioError(path, "is silent (peak below -90 dBFS)")
    if x.size < min_seconds * fs:
        raise AudioError(path, f"is too short ({x.size / fs * 1000:.0f} ms; "
                               f"need at least {min_seconds * 1000:.0f} ms)")
    clipped = np.count_nonzero(np.abs(x) >= 0.999)
    if clipped > CLIP_FRACTION * x.size and clipped >= 8:
        where = f"{path}: " if path is not None else ""
        warnings.warn(f"{where}clipped audio ({clipped} samples at full scale); "
                      "features of clipped frames are distorted", ClippingWarning, stacklevel=2)


def resample(x: np.ndarray, fs_in: int, fs_out: int) -> np.ndarray:
    """Band-limited resampling (librosa / soxr_hq); a no-op when the rates match."""
    if fs_in == fs_out:
        return x
    import librosa

    return librosa.resample(x, orig_sr=fs_in, target_sr=fs_out, res_type="soxr_hq")


def load_audio(path: PathLike, fs: int, min_seconds: float = 0.0) -> Tuple[np.ndarray, int]:
    """Read, validate, mix to mono and resample to ``fs``.

    Returns
    -------
    x : ndarray, shape (n_samples,), float64 at rate ``fs``
    fs_orig : int, the file's own sample rate (to write outputs back at it)
    """
    x, fs_orig = read_audio(path)
    check_signal(x, fs_orig, path, min_seconds=min_seconds)
    return resample(x, fs_orig, fs), fs_orig


def write_audio(path: PathLike, x: np.ndarray, fs: int, subtype: str = "PCM_16") -> None:
    """Write ``x`` atomically (WAV by default, FLAC when the name ends in .flac).

    Samples are scaled down if they would clip.
    """
    import soundfile as sf

    x = np.asarray(x, dtype=np.float64)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 0.999:
        x = x * (0.999 / peak)
    path = Path(path)
    fmt = "FLAC" if path.suffix.lower() == ".flac" else "WAV"
    with atomic_path(path, suffix=path.suffix) as tmp:
        sf.write(str(tmp), x, int(fs), subtype=subtype, format=fmt)


#: file types the converters write
OUTPUT_SUFFIXES = (".wav", ".flac")


def check_output_path(in_path: PathLike, out_path: PathLike) -> None:
    """One-line AudioError for an output that is unusable or would overwrite the input."""
    from .io import same_file

    in_path, out_path = Path(in_path), Path(out_path)
    if out_path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise AudioError(out_path, f"output must end in {' or '.join(OUTPUT_SUFFIXES)}")
    if out_path.is_dir():
        raise AudioError(out_path, "is a directory; give an output file name")
    if in_path.exists() and same_file(in_path, out_path):
        raise AudioError(out_path, "is the input file; refusing to overwrite it")


def seconds(n_samples: int, fs: int) -> float:
    return n_samples / float(fs) if fs else math.nan
