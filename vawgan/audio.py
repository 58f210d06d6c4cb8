"""Reading and writing audio, with a clear one-line error for every unusable input.

Anything soundfile reads (WAV, FLAC, OGG, ...; 8/16/24/32-bit integer or float
samples; any channel count; any sample rate) is accepted, mixed to mono and
resampled (librosa, soxr) to the working rate.
"""

from __future__ import annotations

import io
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
#: files longer than this are read block by block into float32 (bounded memory)
LONG_READ_SECONDS = 30.0
#: fraction of samples at full scale above which the input is reported as clipped
CLIP_FRACTION = 1e-3


class ClippingWarning(UserWarning):
    """The input has many full-scale samples; it is processed anyway."""


class TruncatedAudioWarning(UserWarning):
    """A WAV file holds fewer samples than its header announces; what is there is used."""


class ChannelWarning(UserWarning):
    """The channels of the input cancel in a mono mix; one channel is used."""


def _sf_message(e: Exception) -> str:
    """libsndfile's reason without its "Error opening <name>: " prefix."""
    msg = str(e).splitlines()[0] if str(e) else ""
    if msg.startswith("Error opening") and ": " in msg:
        msg = msg.split(": ", 1)[1]
    return msg[:120] or type(e).__name__


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    if not path.exists():
        raise AudioError(path, "no such file")
    if not os.access(path, os.R_OK):
        raise AudioError(path, "permission denied")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")


def probe_audio(path: PathLike) -> Tuple[int, int]:
    """Check that ``path`` is a readable audio file from its header alone (fast: no
    samples are read); AudioError otherwise.

    Returns
    -------
    n_frames, fs : int
    """
    import soundfile as sf

    path = Path(path)
    _check_file(path)
    try:
        info = sf.info(os.fsencode(path))  # bytes: any file name the OS accepts
    except Exception as e:  # soundfile raises assorted types on garbage input
        raise AudioError(path, f"not a readable audio file ({_sf_message(e)})") from None
    if info.frames == 0:
        raise AudioError(path, "contains no samples (zero-length audio)")
    return int(info.frames), int(info.samplerate)


def read_audio(path: PathLike) -> Tuple[np.ndarray, int]:
    """Read ``path`` as float64 mono in [-1, 1] at its own rate, validating it.

    Returns
    -------
    x : ndarray, shape (n_samples,)
    fs : int
    """
    import soundfile as sf

    path = Path(path)
    n_frames, fs_hdr = probe_audio(path)
    if n_frames > LONG_READ_SECONDS * fs_hdr:
        return _read_long(path, n_frames, fs_hdr)
    try:
        x, fs = sf.read(os.fsencode(path), dtype="float64", always_2d=True)
    except Exception as e:  # soundfile raises assorted types on garbage input
        raise AudioError(path, f"not a readable audio file ({_sf_message(e)})") from None
    if x.shape[0] == 0:
        raise AudioError(path, "contains no samples (zero-length audio)")
    if not np.all(np.isfinite(x)):
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise AudioError(path, f"contains {bad} NaN or infinite samples")
    _warn_if_truncated(path, x.shape[0], int(fs))
    if x.shape[1] == 1:
        return x[:, 0], int(fs)
    mono = x.mean(axis=1)
    ch = _cancelled_channel(path, mono, np.max(np.abs(x), axis=0))
    return (mono if ch is None else x[:, ch]), int(fs)


def _cancelled_channel(path: Path, mono: np.ndarray, peaks: np.ndarray) -> Optional[int]:
    """The loudest channel, with a warning, when the channels cancel in the mono mix
    (antiphase stereo reads as silence otherwise); else None."""
    if len(peaks) < 2 or not np.max(np.abs(mono)) < SILENCE_PEAK <= peaks.max():
        return None
    ch = int(np.argmax(peaks))
    warnings.warn(f"{path}: its {len(peaks)} channels cancel when mixed to mono (in "
                  f"antiphase); using channel {ch + 1} alone", ChannelWarning, stacklevel=4)
    return ch


def _read_long(path: Path, n_frames: int, fs: int) -> Tuple[np.ndarray, int]:
    """:func:`read_audio` of a long file: block by block into float32 mono, so that
    an hour of 48 kHz stereo takes 0.7 GB, not 2.8."""
    import soundfile as sf

    x = np.empty(n_frames, dtype=np.float32)
    peaks, pos, bad = None, 0, 0
    try:
        for blk in sf.blocks(os.fsencode(path), blocksize=1 << 20, dtype="float32",
                             always_2d=True):
            bad += int(np.count_nonzero(~np.isfinite(blk)))
            p = np.max(np.abs(blk), axis=0)
            peaks = p if peaks is None else np.maximum(peaks, p)
            x[pos: pos + len(blk)] = blk.mean(axis=1) if blk.shape[1] > 1 else blk[:, 0]
            pos += len(blk)
    except Exception as e:  # soundfile raises assorted types on garbage input
        raise AudioError(path, f"not a readable audio file ({_sf_message(e)})") from None
    if peaks is None:
        raise AudioError(path, "contains no samples (zero-length audio)")
    if bad:
        raise AudioError(path, f"contains {bad} NaN or infinite samples")
    x = x[:pos]
    _warn_if_truncated(path, pos, fs)
    ch = _cancelled_channel(path, x, peaks)
    if ch is not None:
        pos = 0
        for blk in sf.blocks(os.fsencode(path), blocksize=1 << 20, dtype="float32",
                             always_2d=True):
            x[pos: pos + len(blk)] = blk[:, ch]
            pos += len(blk)
    return x, int(fs)


def _warn_if_truncated(path: Path, n_read: int, fs: int) -> None:
    short = wav_truncation(path, n_read, fs)
    if short is not None:
        warnings.warn(f"{path}: truncated WAV: its header announces {short[0]:.2f} s, the file "
                      f"holds {short[1]:.2f} s; converting what is there",
                      TruncatedAudioWarning, stacklevel=4)


def wav_truncation(path: PathLike, n_read: int, fs: int) -> Optional[Tuple[float, float]]:
    """``(announced_s, present_s)`` when ``path`` is a WAV file whose data chunk is
    shorter than its header says (a copy or a recording cut short), else None.

    Only the RIFF chunk headers are read. Streaming writers that leave the size 0 or
    0xFFFFFFFF (unknown) are not reported.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
                return None
            size = path.stat().st_size
            block = None
            while True:
                ch = f.read(8)
                if len(ch) < 8:
                    return None
                cid, n = ch[:4], int.from_bytes(ch[4:], "little")
                if cid == b"fmt ":
                    fmt = f.read(n)
                    block = int.from_bytes(fmt[12:14], "little") if len(fmt) >= 14 else None
                    f.seek(n % 2, 1)
                elif cid == b"data":
                    present = size - f.tell()
                    if n in (0, 0xFFFFFFFF) or n <= present or not block:
                        return None
                    return n / block / fs, min(present // block, n_read) / fs
                else:
                    f.seek(n + n % 2, 1)
    except OSError:
        return None


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

    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)  # float32 is kept: a long output is not copied
    peak = float(max(np.max(x), -np.min(x))) if x.size else 0.0  # no |x| temporary
    if peak > 0.999:
        x = x * (0.999 / peak)
    path = Path(path)
    fmt = "FLAC" if path.suffix.lower() == ".flac" else "WAV"
    # encoded in memory, then written: a failed write is an OSError that names its cause
    # (libsndfile writing to the file itself only says "System error")
    buf = io.BytesIO()
    sf.write(buf, x, int(fs), subtype=subtype, format=fmt)
    with atomic_path(path, suffix=path.suffix) as tmp:
        tmp.write_bytes(buf.getbuffer())


#: file types the converters write
OUTPUT_SUFFIXES = (".wav", ".flac")


def check_output_path(in_path: PathLike, out_path: PathLike) -> None:
    """One-line error for an output that is unusable or would overwrite the input:
    AudioError for the name, :class:`vawgan.errors.OutputError` when it could not be
    written (a parent is a file, permission, read-only file system)."""
    from .io import check_writable, same_file

    in_path, out_path = Path(in_path), Path(out_path)
    if out_path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise AudioError(out_path, f"output must end in {' or '.join(OUTPUT_SUFFIXES)}")
    if out_path.is_dir():
        raise AudioError(out_path, "is a directory; give an output file name")
    if in_path.exists() and same_file(in_path, out_path):
        raise AudioError(out_path, "is the input file; refusing to overwrite it")
    check_writable(out_path)


def seconds(n_samples: int, fs: int) -> float:
    return n_samples / float(fs) if fs else math.nan
