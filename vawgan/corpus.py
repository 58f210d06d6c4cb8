"""Corpora, audio listings and utterance lists: the one place that decides what is audio.

Corpus layout
    ``<root>/<speaker>/<utt>.<ext>`` where ``<ext>`` is one of
    :data:`AUDIO_EXTENSIONS` (what libsndfile, hence soundfile, reads: wav, flac, ogg,
    aiff, ...); hidden entries (``.name``) are ignored. :func:`list_corpus` lists it,
    :func:`list_speakers` its speaker folders.

Audio inputs of ``vawgan convert`` / ``vawgan evaluate``
    A folder (its audio files, sorted) or a list file with one path per line:
    :func:`collect_audio`.

Utterance lists (``--utts-file`` of ``vawgan extract``, ``vawgan stats``, ``vawgan train``)
    Text files with one ``speaker/utt`` per line; blank lines and ``#`` comments are
    ignored, a trailing ``.npz`` is tolerated: :func:`read_utt_list`. Utterance ids and
    numeric ranges (``100151-100162``) on the command line: :func:`parse_utt_spec`.

Examples
--------
>>> from vawgan.corpus import parse_utt_spec, read_utt_list
>>> sorted(parse_utt_spec(["0008-0010", "x7"]))
['0008', '0009', '0010', 'x7']
>>> read_utt_list(["# training", "SF1/100001", "TM1/100002.npz"])
[('SF1', '100001'), ('TM1', '100002')]
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union

from .errors import CorpusError
from .io import PathLike

#: file extensions treated as audio, lower case without the dot (what libsndfile reads)
AUDIO_EXTENSIONS = frozenset({
    "wav", "wave", "flac", "ogg", "oga", "opus", "aiff", "aif", "aifc", "au", "snd", "caf",
    "mp3", "w64", "rf64", "sph", "nist", "htk", "voc", "paf", "svx", "sd2", "ircam", "sf",
    "xi", "mat", "mat4", "mat5", "pvf", "avr", "wve", "mpc", "sds"})

UttKey = Tuple[str, str]  # (speaker, utt)


#: the file suffix of feature files (:func:`vawgan.features.save_features`); inputs with
#: it are read, not analysed, by :func:`vawgan.features.read_input`
FEATURE_SUFFIX = ".npz"


def is_audio(path: PathLike) -> bool:
    """True when ``path``'s name is not hidden and its extension is in :data:`AUDIO_EXTENSIONS`."""
    p = Path(path)
    return not p.name.startswith(".") and p.suffix.lower().lstrip(".") in AUDIO_EXTENSIONS


def listdir(path: PathLike, what: str) -> List[Path]:
    """The entries of a directory, sorted; CorpusError naming ``path`` and ``what`` otherwise."""
    path = Path(path)
    try:
        return sorted(path.iterdir())
    except FileNotFoundError:
        raise CorpusError(f"{path}: {what} not found") from None
    except NotADirectoryError:
        raise CorpusError(f"{path}: {what} is not a directory") from None
    except PermissionError:
        raise CorpusError(f"{path}: {what} is not readable (permission denied)") from None
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise CorpusError(f"{path}: cannot read {what} ({why})") from None


# --------------------------------------------------------------------------- lists
def read_utt_list(utts: Union[PathLike, Sequence[str]]) -> List[UttKey]:
    """Read an utterance list: one ``speaker/utt`` per line.

    Parameters
    ----------
    utts : path or sequence of str
        A list file, or its lines. Blank lines and ``#`` comments are ignored; a
        trailing ``.npz`` on the utterance is dropped.

    Returns
    -------
    list of (speaker, utt)
        In file order; empty when the list names nothing (callers that need
        utterances say so).

    Raises
    ------
    CorpusError
        The file cannot be read, or a line is not ``speaker/utt`` (the message names
        the file and the line).
    """
    if isinstance(utts, (str, os.PathLike)):
        path = Path(utts)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise CorpusError(f"{path}: utterance list not found") from None
        except (OSError, UnicodeDecodeError) as e:
            raise CorpusError(f"{path}: cannot read utterance list ({type(e).__name__})") from None

        def where(i: int) -> str:
            return f"{path}:{i}"
    else:
        lines = list(utts)

        def where(i: int) -> str:
            return f"utterance list, line {i}"
    out = []
    for i, line in enumerate(lines, 1):
        line = str(line).split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split("/")
        if len(parts) != 2 or not all(parts) or any(p.strip() != p for p in parts):
            raise CorpusError(f"{where(i)}: expected 'speaker/utt', got {line!r}")
        spk, utt = parts
        if utt.endswith(".npz") and len(utt) > 4:
            utt = utt[:-4]
        out.append((spk, utt))
    return out


def parse_utt_spec(specs: Iterable[str]) -> Set[str]:
    """Expand utterance ids and numeric ranges (``100151-100162``) into a set of ids.

    Items may be separated by commas or blanks; zero padding is kept
    (``0008-0010`` -> ``0008, 0009, 0010``). ValueError for a range that ends before
    it starts.
    """
    out: Set[str] = set()
    for spec in specs:
        for item in str(spec).replace(",", " ").split():
            m = re.fullmatch(r"(\d+)-(\d+)", item)
            if m:
                a, b = m.group(1), m.group(2)
                if int(b) < int(a):
                    raise ValueError(f"utterance range {item!r}: end before start")
                width = len(a) if len(a) == len(b) else 0
                out.update(str(n).zfill(width) for n in range(int(a), int(b) + 1))
            else:
                out.add(item)
    return out


# --------------------------------------------------------------------------- audio inputs
def collect_audio(spec: PathLike, what: str = "--in", features: bool = False) -> List[Path]:
    """Audio files named by ``spec``: a folder (its audio files, sorted) or a list file.

    A list file has one path per line (relative paths are relative to the list
    file's folder); blank lines and lines starting with ``#`` are ignored. ``what``
    names the input in error messages (e.g. ``--ref``). With ``features``, a folder's
    feature files (``.npz`` of a dump, :func:`vawgan.features.read_input`) count too.

    Returns
    -------
    list of Path
    """
    spec = Path(spec)
    if spec.is_dir():
        files = [p for p in listdir(spec, f"{what} folder") if p.is_file() and (
            is_audio(p) or features and p.suffix.lower() == FEATURE_SUFFIX)]
        if not files:
            raise CorpusError(f"{spec}: {what} folder holds no audio files "
                              "(.wav, .flac, .ogg, .aiff, ...: what soundfile reads)")
        return files
    if not spec.is_file():
        raise CorpusError(f"{spec}: {what} is neither a folder nor a list file")
    try:
        lines = spec.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise CorpusError(f"{spec}: {what} is not a text list of audio paths "
                          "(binary file)") from None
    except OSError as e:
        raise CorpusError(f"{spec}: cannot read {what} list ({type(e).__name__})") from None
    files = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        p = Path(line)
        files.append(p if p.is_absolute() else spec.parent / p)
    if not files:
        raise CorpusError(f"{spec}: {what} list file names no audio files")
    return files


def plan_batch(files: Sequence[PathLike], out: PathLike, overwrite: bool = False,
               where: str = "inputs") -> Tuple[List[Tuple[Path, Path]], List[str]]:
    """Output paths of a batch: ``<out>/<input name>.wav``.

    Parameters
    ----------
    files : sequence of path
        The inputs (e.g. :func:`vawgan.corpus.collect_audio`).
    out : path
        The output folder.
    overwrite : bool
        Convert again inputs whose output exists (default: skip them).
    where : str
        Names the inputs in the error message (e.g. the ``--in`` list file).

    Returns
    -------
    todo : list of (input, output)
    skipped : list of str
        Outputs that exist (not converted again).

    Raises
    ------
    CorpusError
        Two inputs have the same name (their outputs would collide).
    """
    out = Path(out)
    seen: Dict[str, Path] = {}
    for f in map(Path, files):
        if f.stem in seen:
            raise CorpusError(f"{where}: two inputs named {f.stem} ({seen[f.stem]}, {f}); "
                              "outputs would collide")
        seen[f.stem] = f
    todo, skipped = [], []
    for f in map(Path, files):
        dest = out / f"{f.stem}.wav"
        if dest.exists() and not overwrite:
            skipped.append(str(dest))
        else:
            todo.append((f, dest))
    return todo, skipped


# --------------------------------------------------------------------------- corpus
def list_speakers(corpus: PathLike) -> List[str]:
    """Names of the speaker folders of ``<corpus>`` (not hidden), sorted."""
    return [p.name for p in listdir(corpus, "corpus directory")
            if p.is_dir() and not p.name.startswith(".")]


def list_corpus(corpus: PathLike, speakers: Optional[Iterable[str]] = None,
                utts: Optional[Iterable[UttKey]] = None
                ) -> Tuple[List[Tuple[str, str, Path]], List[dict]]:
    """List ``<corpus>/<speaker>/<utt>.<audio ext>``.

    Parameters
    ----------
    corpus : path
    speakers : iterable of str, optional
        Only these speakers (each must exist); default all sub-directories.
    utts : iterable of (speaker, utt), optional
        Only these utterances; a listed one that is not in the corpus is a failure.

    Returns
    -------
    items : list of (speaker, utt, source path), sorted
    problems : list of failure dicts ({speaker, utt, source, error}) found while listing
    """
    root = Path(corpus)
    spk_dirs = {name: root / name for name in list_speakers(root)}
    if speakers is not None:
        speakers = list(dict.fromkeys(speakers))
        missing = [s for s in speakers if s not in spk_dirs]
        if missing:
            raise CorpusError(f"{root}: no speaker directory {missing[0]!r} "
                              f"(found: {', '.join(sorted(spk_dirs)) or 'none'})")
        spk_dirs = {s: spk_dirs[s] for s in speakers}
    wanted = None if utts is None else set(utts)
    items, problems = [], []
    for spk in sorted(spk_dirs):
        seen: Dict[str, Path] = {}
        for p in listdir(spk_dirs[spk], "speaker directory"):
            if not is_audio(p):
                continue
            if wanted is not None and (spk, p.stem) not in wanted:
                continue
            if p.stem in seen:
                problems.append(dict(speaker=spk, utt=p.stem, source=str(p),
                                     error=f"{p}: duplicate of {seen[p.stem].name}; skipped"))
                continue
            seen[p.stem] = p
            items.append((spk, p.stem, p))
    if wanted is not None:
        found = {(s, u) for s, u, _ in items}
        for spk, utt in sorted(wanted - found):
            if spk in spk_dirs:
                src = spk_dirs[spk] / utt
                problems.append(dict(speaker=spk, utt=utt, source=str(src),
                                     error=f"{src}.*: listed utterance not found in the corpus"))
    return items, problems
