"""Training frames from a feature dump, normalized with the per-speaker statistics.

:func:`load_training_data` reads ``DUMP/<spk>/<utt>.npz`` for every ``speaker/utt``
of the training list, z-scores c1..c39 with the speaker's ``mcep_mean`` /
``mcep_std`` and puts every frame on the device as one float32 tensor, grouped by
speaker (contiguous blocks) with the utterance boundaries kept so that windows and
segments never straddle two utterances. Silent frames stay in the tensor, so that
an encoder window or a segment sees the true neighbours of a frame, as at conversion
(which runs over the whole utterance); a mask (``TrainingData.keep``,
``Features.nonsilent``) marks the non-silent frames, the only ones drawn as training
frames and counted in the losses.

:class:`Sampler` draws random batches on the device from one ``torch.Generator``
(whose state is checkpointed, so a resumed run draws the same batches).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence, Tuple, Union

import numpy as np

from .corpus import read_utt_list
from .errors import CorpusError, FeatureError
from .io import PathLike

StatsLike = Union[PathLike, Mapping[str, Any]]


def _stat_arrays(st: Any, spk: str, where: str) -> Tuple[np.ndarray, np.ndarray, Dict[str, Any]]:
    """(mean (39,), std (39,), serializable dict) from a SpeakerStats, a dict or a pair."""
    if isinstance(st, (tuple, list)) and len(st) == 2:
        mean, std = st
        d = None
    elif isinstance(st, Mapping):
        mean, std = st.get("mcep_mean"), st.get("mcep_std")
        d = dict(st)
    else:
        mean, std = getattr(st, "mcep_mean", None), getattr(st, "mcep_std", None)
        d = st.to_dict() if hasattr(st, "to_dict") else None
    if mean is None or std is None:
        raise FeatureError(f"{where}: speaker {spk} has no mcep_mean / mcep_std")
    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    if mean.shape != std.shape or mean.ndim != 1:
        raise FeatureError(f"{where}: speaker {spk}: mcep_mean {mean.shape} / mcep_std {std.shape}")
    if not np.all(np.isfinite(mean)) or not np.all(std > 0):
        raise FeatureError(f"{where}: speaker {spk}: non-finite mean or non-positive std")
    if d is None:
        d = {"mcep_mean": mean.tolist(), "mcep_std": std.tolist()}
    d = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in d.items()}
    return mean, std, d


def resolve_stats(stats: StatsLike) -> Tuple[Dict[str, Tuple[np.ndarray, np.ndarray]], Dict[str, Dict]]:
    """Statistics from ``stats.json`` (via ``vawgan.stats.load_stats``) or a mapping.

    Parameters
    ----------
    stats : path or mapping
        A path to ``stats.json``, or ``{speaker: SpeakerStats | dict | (mean, std)}``.

    Returns
    -------
    arrays : dict
        ``{speaker: (mcep_mean (39,), mcep_std (39,))}``.
    dicts : dict
        ``{speaker: dict}`` for the model bundle.
    """
    if isinstance(stats, (str, os.PathLike)):
        where = str(stats)
        from .stats import load_stats

        raw = load_stats(stats)
    else:
        where, raw = "statistics", stats
    arrays, dicts = {}, {}
    for spk, st in raw.items():
        mean, std, d = _stat_arrays(st, spk, where)
        arrays[spk] = (mean, std)
        dicts[spk] = d
    return arrays, dicts


@dataclass
class TrainingData:
    """All training frames on one device.

    Frames are grouped by speaker: speaker ``k`` owns rows
    ``spk_start[k] : spk_start[k] + spk_count[k]``.
    """

    frames: Any  #: Tensor (N, 39) float32, z-scored c1..c39
    spk: Any  #: LongTensor (N,) speaker ids
    speakers: List[str]  #: names; index = speaker id
    spk_start: np.ndarray  #: (S,) first row of each speaker
    spk_count: np.ndarray  #: (S,) rows of each speaker
    utt_start: np.ndarray  #: (U,) first row of each utterance
    utt_len: np.ndarray  #: (U,) non-silent frames of each utterance
    utt_spk: np.ndarray  #: (U,) speaker id of each utterance
    stats: Dict[str, Tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  #: (mean, std)
    stats_dicts: Dict[str, Dict] = field(default_factory=dict)  #: for the bundle
    utts: List[Tuple[str, str]] = field(default_factory=list)  #: (speaker, utt) loaded
    #: BoolTensor (N,): non-silent frames (the ones trained on); None = every frame
    keep: Any = None

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def n_dims(self) -> int:
        return int(self.frames.shape[1])

    @property
    def n_speakers(self) -> int:
        return len(self.speakers)

    @property
    def n_speech(self) -> int:
        """Frames trained on (non-silent)."""
        return self.n_frames if self.keep is None else int(self.keep.sum())

    def to(self, device) -> "TrainingData":
        self.frames = self.frames.to(device)
        self.spk = self.spk.to(device)
        if self.keep is not None:
            self.keep = self.keep.to(device)
        return self

    def unit_starts(self, length: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Start rows of all segments of ``length`` frames inside one utterance whose
        centre frame (row ``start + length // 2``) is non-silent (:attr:`keep`).

        Returns
        -------
        starts : ndarray (M,) int64, grouped by speaker
        start : ndarray (S,), count : ndarray (S,)
            Speaker ``k`` owns ``starts[start[k] : start[k] + count[k]]``.
        """
        if length < 1:
            raise ValueError(f"unit_starts: length={length} must be >= 1")
        keep = None if self.keep is None else self.keep.cpu().numpy()
        per_spk: List[List[np.ndarray]] = [[] for _ in self.speakers]
        for s0, n, k in zip(self.utt_start, self.utt_len, self.utt_spk):
            if n >= length:
                st = np.arange(s0, s0 + n - length + 1, dtype=np.int64)
                if keep is not None:
                    st = st[keep[st + length // 2]]
                per_spk[k].append(st)
        arrs = [np.concatenate(a) if a else np.zeros(0, np.int64) for a in per_spk]
        count = np.array([len(a) for a in arrs], dtype=np.int64)
        start = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)
        return np.concatenate(arrs), start, count

    def frame_bounds(self) -> Tuple[np.ndarray, np.ndarray]:
        """First and last row of each frame's utterance.

        Returns
        -------
        first, last : ndarray (N,) int64
            Row ``i`` belongs to the utterance of rows ``first[i] .. last[i]``.
        """
        n = self.n_frames
        first = np.full(n, -1, dtype=np.int64)
        last = np.full(n, -1, dtype=np.int64)
        for s0, m in zip(self.utt_start, self.utt_len):  # per utterance, not per frame
            first[s0:s0 + m] = s0
            last[s0:s0 + m] = s0 + m - 1
        if np.any(first < 0):
            raise ValueError(f"frame_bounds: row {int(np.argmax(first < 0))} is in no utterance")
        return first, last


def load_training_data(dump: PathLike, stats: StatsLike, utts: Union[PathLike, Sequence[str]],
                       silence_db: float = -20.0, feature_config=None, device="cpu",
                       progress: bool = True) -> TrainingData:
    """Read, de-silence and z-score the training utterances.

    Parameters
    ----------
    dump : path
        The dump folder (``DUMP/<spk>/<utt>.npz``).
    stats : path or mapping
        ``stats.json`` or ``{speaker: SpeakerStats | dict | (mean (39,), std (39,))}``.
    utts : path or sequence of str
        ``speaker/utt`` lines (:func:`vawgan.corpus.read_utt_list`).
    silence_db : float
        Passed to ``Features.nonsilent``.
    feature_config : FeatureConfig, optional
        When given, every file must have been made with it.
    device : str or torch.device
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    TrainingData
    """
    import torch
    from tqdm import tqdm

    from .features import check_compatible, load_features

    dump = Path(dump)
    if not dump.is_dir():
        raise FeatureError(f"{dump}: dump folder not found")
    pairs = read_utt_list(utts)
    if not pairs:
        where = str(utts) if isinstance(utts, (str, os.PathLike)) else "utterance list"
        raise CorpusError(f"{where}: no utterances")
    arrays, dicts = resolve_stats(stats)
    speakers = sorted({s for s, _ in pairs})
    missing = [s for s in speakers if s not in arrays]
    if missing:
        raise FeatureError(f"statistics have no speaker {missing[0]} "
                           f"(they have: {', '.join(sorted(arrays))})")
    chunks: List[np.ndarray] = []
    keeps: List[np.ndarray] = []
    spk_ids, utt_len, loaded = [], [], []
    order = sorted(range(len(pairs)), key=lambda i: (speakers.index(pairs[i][0]), i))
    n_dims = None
    for i in tqdm(order, desc="loading frames", unit="utt", disable=not progress, leave=False):
        spk, utt = pairs[i]
        path = dump / spk / f"{utt}.npz"
        feats = load_features(path)
        if feature_config is not None:
            check_compatible(feats, feature_config, where=str(path))
        body = feats.body
        speech = feats.nonsilent(silence_db)
        mean, std = arrays[spk]
        if n_dims is None:
            n_dims = body.shape[1]
        if body.shape[1] != n_dims or mean.shape[0] != n_dims:
            raise FeatureError(f"{path}: {body.shape[1]} mcep dims, statistics have "
                               f"{mean.shape[0]}, other files {n_dims}")
        if not np.any(speech):
            continue
        chunks.append(((body - mean) / std).astype(np.float32))
        keeps.append(speech)
        spk_ids.append(speakers.index(spk))
        utt_len.append(len(body))
        loaded.append((spk, utt))
    if not chunks:
        raise FeatureError(f"{dump}: no non-silent frames in the listed utterances")
    utt_len_a = np.asarray(utt_len, dtype=np.int64)
    utt_start = np.concatenate([[0], np.cumsum(utt_len_a)[:-1]]).astype(np.int64)
    spk_a = np.asarray(spk_ids, dtype=np.int64)
    spk_count = np.bincount(spk_a, weights=utt_len_a, minlength=len(speakers)).astype(np.int64)
    spk_start = np.concatenate([[0], np.cumsum(spk_count)[:-1]]).astype(np.int64)
    frames = torch.from_numpy(np.concatenate(chunks))
    spk = torch.from_numpy(np.repeat(spk_a, utt_len_a))
    keep = torch.from_numpy(np.concatenate(keeps))
    return TrainingData(frames=frames.to(device), spk=spk.to(device), speakers=speakers,
                        spk_start=spk_start, spk_count=spk_count, utt_start=utt_start,
                        utt_len=utt_len_a, utt_spk=spk_a, stats={s: arrays[s] for s in speakers},
                        stats_dicts={s: dicts[s] for s in speakers}, utts=loaded,
                        keep=keep.to(device))


class Sampler:
    """Random batches of frames and of critic units (frames or segments), on the device.

    Parameters
    ----------
    data : TrainingData
    unit : int
        Frames per critic unit (1 for the frame critic, ``model.segment`` for conv, and
        for arch "conv" the length of the training segments too).
    generator : torch.Generator
        On the data's device; the only source of randomness (checkpoint its state).
    context : int
        Frames on each side of the encoder's input windows built here
        (``ModelConfig.sampler_context``). The encoder inputs returned by
        :meth:`vae_batch`, :meth:`units_not_of` and :meth:`adversarial` are then
        windows (frames t-k..t+k of the same utterance, silent frames included,
        concatenated, indices clamped to the utterance: edge replication), gathered
        from the one frame tensor; with 0 they are the frames (the same draws either way).
    segments : bool
        Arch "conv": :meth:`vae_batch` draws segments of ``unit`` frames (with the
        mask of their non-silent frames) instead of single frames.

    Notes
    -----
    Only non-silent frames are drawn (centre frames of units and windows, see
    :meth:`TrainingData.unit_starts`).
    """

    def __init__(self, data: TrainingData, unit: int, generator, context: int = 0,
                 segments: bool = False):
        import torch

        self.data = data
        self.unit = int(unit)
        self.gen = generator
        self.context = int(context)
        self.segments = bool(segments)
        if self.context < 0:
            raise ValueError(f"Sampler: context={context} must be >= 0")
        dev = data.frames.device
        starts, start, count = data.unit_starts(self.unit)
        empty = [data.speakers[k] for k in range(data.n_speakers) if count[k] == 0]
        if empty:
            raise FeatureError(f"speaker {empty[0]} has no utterance of at least {self.unit} "
                               "frames around a non-silent one (lower model.segment)")
        self.starts = torch.from_numpy(starts).to(dev)
        self.start = torch.from_numpy(start).to(dev)
        self.count = torch.from_numpy(count).to(dev)
        self.n_units = int(len(starts))
        self.offsets = torch.arange(self.unit, device=dev)
        self.single_speaker = data.n_speakers == 1
        # rows drawn as training frames: the non-silent ones (None = every row)
        self.rows = None if data.keep is None else torch.nonzero(data.keep)[:, 0]
        if self.context > 0:
            first, last = data.frame_bounds()
            self.first = torch.from_numpy(first).to(dev)
            self.last = torch.from_numpy(last).to(dev)

    @classmethod
    def for_model(cls, data: TrainingData, model_cfg, generator) -> "Sampler":
        """The sampler a model configuration trains with: its unit length (a frame, or
        a segment for the conv critic), its encoder context, segments for
        ``arch: conv``."""
        return cls(data, model_cfg.unit_length(), generator, context=model_cfg.sampler_context(),
                   segments=model_cfg.arch == "conv")

    def windows(self, rows):
        """Encoder inputs of frames ``rows`` (...,): (..., (2k+1) D) windows, or with
        context 0 the frames (..., D) (:func:`vawgan.model.gather_windows`)."""
        from .model import gather_windows

        if self.context == 0:
            return self.data.frames[rows]
        return gather_windows(self.data.frames, rows, self.first[rows], self.last[rows],
                              self.context)

    def _rows(self, n: int):
        import torch

        dev = self.data.frames.device
        if self.rows is None:
            return torch.randint(0, self.data.n_frames, (n,), generator=self.gen, device=dev)
        i = torch.randint(0, len(self.rows), (n,), generator=self.gen, device=dev)
        return self.rows[i]

    def frames(self, n: int):
        """``n`` random non-silent frames: x (n, D), speaker ids (n,)."""
        idx = self._rows(n)
        return self.data.frames[idx], self.data.spk[idx]

    def vae_batch(self, n: int):
        """A batch for the VAE loss: ``(x, spk, encoder input, mask)``.

        * frames (default): ``n`` random non-silent frames x (n, D), speaker ids (n,),
          encoder input (n, (2k+1) D) (``x`` itself with context 0) and mask None;
          draws exactly what :meth:`frames` draws;
        * ``segments``: ``max(1, n // unit)`` random segments x (m, L, D), speaker ids
          (m,), encoder input ``x`` and the mask (m, L) of their non-silent frames.
        """
        if self.segments:
            rows = self._unit_rows(self._draw_units(max(1, n // self.unit)))
            x = self.data.frames[rows]
            keep = None if self.data.keep is None else self.data.keep[rows]
            return x, self.data.spk[rows[:, 0]], x, keep
        idx = self._rows(n)
        x = self.data.frames[idx]
        return x, self.data.spk[idx], (x if self.context == 0 else self.windows(idx)), None

    def cycle_batch(self, n: int):
        """A batch for the cycle term: ``(x, spk, source windows, mask)``.

        * frames (default): ``n`` random non-silent frames x (n, D), speaker ids (n,)
          and the encoder inputs of the frame's own window t-k..t+k, (n, 2k+1, Din)
          (Din = (2k+1) D; with context 0, (n, 1, D)): converting those 2k+1 frames
          gives the window of converted frames that the cycle encodes again, as
          conversion builds windows over converted neighbours; mask None;
        * ``segments``: as :meth:`vae_batch` (the segment is its own context).
        """
        import torch

        if self.segments:
            return self.vae_batch(n)
        idx = self._rows(n)
        x = self.data.frames[idx]
        if self.context == 0:
            return x, self.data.spk[idx], x[:, None, :], None
        k = self.context
        r = idx[:, None] + torch.arange(-k, k + 1, device=idx.device)
        r = torch.minimum(torch.maximum(r, self.first[idx][:, None]), self.last[idx][:, None])
        return x, self.data.spk[idx], self.windows(r), None

    def _draw_units(self, n: int):
        import torch

        return torch.randint(0, self.n_units, (n,), generator=self.gen, device=self.starts.device)

    def _unit_rows(self, u):
        return self.starts[u][:, None] + self.offsets  # (n, L)

    def _gather(self, u):
        rows = self._unit_rows(u)
        return self.data.frames[rows], self.data.spk[rows[:, 0]]

    def units(self, n: int):
        """``n`` random real units: x (n, L, D), speaker ids (n,)."""
        return self._gather(self._draw_units(n))

    def units_not_of(self, spk):
        """One random unit per entry of ``spk`` (n,), each from a *different* speaker.

        Uniform over the units of all other speakers: draw ``v`` uniformly in
        ``[0, M - count[s])`` and skip speaker ``s``'s block. With a single speaker
        there is no other speaker and units of that speaker are returned.

        Returns
        -------
        x : Tensor (n, L, D) or, with context k > 0, (n, L, (2k+1) D)
            The units as encoder inputs: frames, or each frame's window.
        """
        import torch

        if self.single_speaker:
            v = torch.randint(0, self.n_units, spk.shape, generator=self.gen,
                              device=self.starts.device)
        else:
            cnt = self.count[spk]
            r = torch.rand(spk.shape, generator=self.gen, device=self.starts.device,
                           dtype=torch.float64)
            v = (r * (self.n_units - cnt)).long()
            v = v + cnt * (v >= self.start[spk]).long()
        if self.context == 0:
            return self._gather(v)[0]
        return self.windows(self._unit_rows(v))

    def adversarial(self, n: int):
        """Real units of speakers s and source units of other speakers, to be converted to s.

        Returns
        -------
        real : Tensor (n, L, D)
        spk : LongTensor (n,)
            Speaker of each real unit = target of each conversion.
        source : Tensor (n, L, D) or, with context k > 0, (n, L, (2k+1) D)
            Encoder inputs (see :meth:`units_not_of`).
        """
        real, spk = self.units(n)
        return real, spk, self.units_not_of(spk)


def make_synthetic_dump(root: PathLike, speakers: Sequence[str] = ("A", "B", "C"),
                        n_utts: int = 4, n_frames: int = 120, n_dims: int = 39,
                        seed: int = 0, feature_config=None):
    """A small synthetic dump for tests and benchmarks (no audio involved).

    Each utterance has a smooth 8-dim "content" trajectory (AR(1)); speaker ``k`` maps
    it to c1..cD with its own random linear map and offset, plus noise, so conversion is
    learnable. The first and last 10 frames are silent (low ``power_db``).

    Returns
    -------
    utts : list of str
        ``speaker/utt`` names.
    stats : dict
        ``{speaker: SpeakerStats.to_dict()}`` (:func:`vawgan.stats.compute_speaker_stats`).
    """
    from .config import FeatureConfig
    from .features import Features, save_features
    from .stats import compute_speaker_stats

    fc = feature_config or FeatureConfig()
    rng = np.random.default_rng(seed)
    root = Path(root)
    utts, stats = [], {}
    for spk in speakers:
        a = rng.normal(size=(8, n_dims)) / np.sqrt(8) * np.linspace(1.0, 0.1, n_dims)
        b = rng.normal(size=n_dims) * 0.3
        bodies = []
        for u in range(n_utts):
            c = np.zeros((n_frames, 8))
            e = rng.normal(size=(n_frames, 8))
            for t in range(1, n_frames):
                c[t] = 0.9 * c[t - 1] + 0.45 * e[t]
            body = c @ a + b + 0.02 * rng.normal(size=(n_frames, n_dims))
            mcep = np.concatenate([rng.normal(size=(n_frames, 1)), body], axis=1)
            power = np.full(n_frames, 60.0)
            power[:10] = power[-10:] = 0.0
            voiced = rng.random(n_frames) > 0.3
            f0 = np.where(voiced, 120.0 * np.exp(0.1 * np.sin(np.arange(n_frames) / 7.0)), 0.0)
            feats = Features(f0=f0, mcep=mcep, coded_ap=np.zeros((n_frames, 1)), power_db=power,
                             fs=fc.fs, frame_period=fc.frame_period, alpha=fc.resolved_alpha(),
                             fft_size=fc.resolved_fft_size())
            name = f"{100001 + u}"
            save_features(root / spk / f"{name}.npz", feats)
            utts.append(f"{spk}/{name}")
            bodies.append(feats)
        stats[spk] = compute_speaker_stats(bodies, fc.silence_db).to_dict()
    return utts, stats
