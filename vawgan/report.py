"""The over-smoothing figures and a page (Markdown and HTML) of ``vawgan report``.

From the inputs of ``vawgan evaluate`` (natural target recordings ``--ref`` and
converted wavs ``--system NAME=DIR``, matched by utterance name; every file analyzed
with :func:`vawgan.features.analyze_file`), writes into ``--outdir``:

* ``gv.png``: global variance per mel-cepstral dimension c1..c39 (log scale), natural
  target and each system: over-smoothing shows as a GV curve below the natural one,
  mostly at the higher dims;
* ``ms.png``: modulation spectra of selected dims (``--ms-dims``, default c1, c10,
  c30): over-smoothing shows as missing power at the higher modulation frequencies;
* ``scatter.png``: c1 vs c2 (``--scatter-dims``) of every non-silent frame, natural vs
  each system: over-smoothing shows as a shrunken cloud;
* ``trajectory.png``: one dimension (``--traj-dim``) over one utterance (``--utt``),
  natural vs each system;
* ``metrics.json`` (the evaluate result), ``index.md`` and ``index.html`` with the
  metric table and the figures; ``index.html`` also has audio players for a few
  utterances (source when given, natural target, each system), copied under
  ``audio/`` as 16-bit WAV (:mod:`vawgan.listen`): the folder can be zipped or served
  as it is.

GV and MS of a set follow :mod:`vawgan.stats` (non-silent frames, mean over
utterances; :func:`vawgan.stats.set_gv_ms`). ``--eval-json`` reuses the table of an
earlier ``vawgan evaluate`` run instead of recomputing the DTW-based metrics (the wavs
are still analyzed for the plots). The command is :mod:`vawgan.commands.report`.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from .errors import VawganError
from .evaluate import check_result, markdown_table
from .features import Features
from .io import atomic_write_text, atomic_write_with
from .listen import (LISTEN_DEFAULT, copy_listening_audio, listening_table_html,
                     pick_utterances)
from .stats import set_gv_ms, stat_frames

FIGURES = ("gv.png", "ms.png", "scatter.png", "trajectory.png")
#: at most this many frames per cloud in the scatter plot (random subset, fixed seed)
MAX_SCATTER = 4000


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _color(i: int) -> str:
    """Colour of the i-th system (1-based; 0 is natural, black), the same in every figure."""
    return "k" if i == 0 else f"C{(i - 1) % 10}"


def _save(fig, path: Path) -> None:
    plt = _plt()
    try:
        atomic_write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110),
                          suffix=".png")
    finally:
        plt.close(fig)


def plot_gv(path: Path, gvs: Mapping[str, np.ndarray]) -> None:
    """GV per dimension, log scale. ``gvs``: {label: (M,)}; the first is the natural one."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, (label, gv) in enumerate(gvs.items()):
        dims = np.arange(1, len(gv) + 1)
        style = dict(lw=2.2) if i == 0 else dict(lw=1.4, marker=".", ms=4)
        ax.semilogy(dims, gv, label=label, color=_color(i), **style)
    ax.set_xlabel("mel-cepstral dimension")
    ax.set_ylabel("global variance (log scale)")
    ax.set_title("Global variance per dimension (below natural = over-smoothed)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    _save(fig, path)


def plot_ms(path: Path, spectra: Mapping[str, np.ndarray], dims: Sequence[int],
            frame_period: float) -> None:
    """Modulation spectra (dB) of ``dims`` (1-based). ``spectra``: {label: (F, M)}."""
    from .metrics import modulation_frequencies

    plt = _plt()
    fig, axes = plt.subplots(1, len(dims), figsize=(4.2 * len(dims), 4), squeeze=False)
    for ax, d in zip(axes[0], dims):
        for i, (label, ms) in enumerate(spectra.items()):
            freq = modulation_frequencies(2 * (ms.shape[0] - 1), frame_period)
            style = dict(lw=2.2) if i == 0 else dict(lw=1.3)
            ax.plot(freq[1:], ms[1:, d - 1], label=label, color=_color(i), **style)  # DC bin left out
        ax.set_xscale("log")
        ax.set_title(f"c{d}")
        ax.set_xlabel("modulation frequency [Hz]")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("modulation spectrum [dB]")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle("Modulation spectra (less power at high modulation frequency = over-smoothed)")
    fig.tight_layout()
    _save(fig, path)


def plot_scatter(path: Path, natural: np.ndarray, systems: Mapping[str, np.ndarray],
                 dims: Sequence[int]) -> None:
    """c_a vs c_b clouds: natural (grey) under each system. Arrays: (N, M) frames."""
    plt = _plt()
    rng = np.random.default_rng(0)

    def sub(x):
        return x[rng.choice(len(x), MAX_SCATTER, replace=False)] if len(x) > MAX_SCATTER else x

    a, b = dims[0] - 1, dims[1] - 1
    n = max(1, len(systems))
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.2), squeeze=False, sharex=True,
                             sharey=True)
    nat = sub(natural)
    for i, (ax, (label, x)) in enumerate(zip(axes[0], systems.items()), start=1):
        x = sub(x)
        ax.scatter(nat[:, a], nat[:, b], s=3, c="0.6", alpha=0.5, label="natural",
                   rasterized=True)
        ax.scatter(x[:, a], x[:, b], s=3, alpha=0.5, color=_color(i), label=label,
                   rasterized=True)
        ax.set_title(label)
        ax.set_xlabel(f"c{dims[0]}")
        ax.legend(markerscale=4, fontsize=8, loc="upper right")
    axes[0][0].set_ylabel(f"c{dims[1]}")
    fig.suptitle(f"c{dims[0]} vs c{dims[1]} of non-silent frames (shrunken cloud = over-smoothed)")
    fig.tight_layout()
    _save(fig, path)


def plot_trajectory(path: Path, trajs: Mapping[str, np.ndarray], dim: int,
                    frame_period: float, utt: str,
                    colors: Optional[Mapping[str, str]] = None) -> None:
    """One dimension over one utterance. ``trajs``: {label: (T,)}; the first is natural."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 4))
    for i, (label, y) in enumerate(trajs.items()):
        t = np.arange(len(y)) * frame_period / 1000.0
        style = dict(lw=1.6) if i == 0 else dict(lw=1.1, alpha=0.85)
        ax.plot(t, y, label=label, color=(colors or {}).get(label, _color(i)), **style)
    ax.set_xlabel("time [s]")
    ax.set_ylabel(f"c{dim}")
    ax.set_title(f"Trajectory of c{dim}, utterance {utt} (each on its own time axis)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def _page_md(result: Mapping[str, Any], notes: List[str]) -> str:
    parts = ["# Over-smoothing report", "", f"References: `{result.get('ref', '?')}`", "",
             "## Metrics", "", markdown_table(result)]
    titles = {"gv.png": "Global variance per dimension", "ms.png": "Modulation spectra",
              "scatter.png": "Scatter of two dimensions", "trajectory.png": "Trajectory"}
    for fig in FIGURES:
        parts += [f"## {titles[fig]}", "", f"![{titles[fig]}]({fig})", ""]
    if notes:
        parts += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(parts)


def section_html(result: Mapping[str, Any], md_table: str, notes: List[str],
                 listen_html: str = "", prefix: str = "") -> str:
    """The metric table, the audio players and the figures of one report, as an HTML
    fragment; ``prefix`` goes before every link (a page one folder up: ``"SF1-TF1/"``)."""
    from .evaluate import format_metric, table_columns

    cols = table_columns(result)
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h, _ in cols)
    rows = []
    for name, s in result["systems"].items():
        cells = "".join(f"<td>{format_metric(k, s['summary'].get(k), f)}</td>"
                        for k, _, f in cols)
        rows.append(f"<tr><th>{html.escape(name)}</th>{cells}</tr>")
    imgs = "".join(f'<figure><img src="{html.escape(prefix + f)}" alt="{f}">'
                   f"<figcaption>{f}</figcaption></figure>" for f in FIGURES)
    note_html = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    caption = html.escape(md_table.strip().splitlines()[-1])
    listen = (f"<h3>Listen</h3><div style='overflow-x:auto'>{listen_html}</div>"
              if listen_html else "")
    refs = (f"<p>References: <code>{html.escape(str(result['ref']))}</code></p>"
            if result.get("ref") else "")
    return (f"{refs}<table><tr><th>system</th>{head}</tr>{''.join(rows)}</table><p>{caption}</p>"
            f"{listen}<div class='figs'>{imgs}</div><ul>{note_html}</ul>")


def page_html(title: str, body: str) -> str:
    """A self-contained HTML page (no external resources) around ``body``."""
    return ("<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>"
            "body{font-family:sans-serif;max-width:1400px;margin:auto;padding:0 1em}"
            "table{border-collapse:collapse;margin:0.5em 0}"
            "td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}"
            "table.listen td{text-align:center;padding:2px}audio{width:170px}"
            ".figs{display:flex;flex-wrap:wrap}figure{width:48%;margin:0.5%}"
            "img{max-width:100%}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>{body}</body></html>\n")


def make_report(outdir: Path, result: Mapping[str, Any], feats: Mapping[Path, Any],
                ref: Mapping[str, Path], systems: Mapping[str, Mapping[str, Path]],
                silence_db: float, ms_fft: int, frame_period: float,
                ms_dims: Sequence[int] = (1, 10, 30), scatter_dims: Sequence[int] = (1, 2),
                traj_dim: int = 1, utt: Optional[str] = None,
                sources: Optional[Mapping[str, Path]] = None,
                listen: int = LISTEN_DEFAULT) -> Dict[str, Path]:
    """Write the figures and pages; returns ``{name: path}`` of what was written.

    Parameters
    ----------
    outdir : Path
    result : dict
        An :func:`vawgan.evaluate.evaluate` result (for the table).
    feats : dict
        ``{path: Features}`` of every file of ``ref`` and ``systems``.
    ref, systems : mappings of utterance name -> path (see :func:`evaluate`)
    silence_db, ms_fft, frame_period : analysis settings
    ms_dims, scatter_dims, traj_dim : 1-based mel-cepstral dims to plot
    utt : str, optional
        Utterance of the trajectory plot; default the first one every system has.
    sources : mapping of utterance name -> path, optional
        The source recordings, for the players.
    listen : int
        Utterances with audio players (:mod:`vawgan.listen`: copied as 16-bit WAV under
        ``<outdir>/audio/``); 0 = none. ``listen.json`` records the players (columns,
        ``{utt: {column: link}}``) and the notes, so that :func:`gather_page` can put
        several reports on one page.
    """
    notes: List[str] = []
    ok = {p for p, f in feats.items() if isinstance(f, Features)}
    used = {n: {u: p for u, p in files.items() if u in ref and p in ok and ref[u] in ok}
            for n, files in systems.items()}
    plotted = {}
    for n, files in used.items():
        if not files:
            notes.append(f"{n}: no readable utterance matching a reference; not plotted")
        elif all(p == ref[u] for u, p in files.items()):
            notes.append(f"{n}: the references themselves; drawn as 'natural'")
        else:
            plotted[n] = files
    nat_utts = sorted({u for files in plotted.values() for u in files} or
                      {u for u, p in ref.items() if p in ok})
    if not nat_utts:
        raise VawganError("report: no readable reference utterance")

    def bodies(files, utts):
        return [b for b in (stat_frames(feats[files[u]], silence_db) for u in utts) if len(b) >= 2]

    nat_b = bodies(ref, nat_utts)
    sys_b = {n: bodies(files, sorted(files)) for n, files in plotted.items()}
    gvs, spectra = {}, {}
    for n, b in {"natural": nat_b, **sys_b}.items():
        gvs[n], spectra[n] = set_gv_ms(b, ms_fft)
    outdir.mkdir(parents=True, exist_ok=True)
    out = {name: outdir / name for name in FIGURES}
    plot_gv(out["gv.png"], gvs)
    plot_ms(out["ms.png"], spectra, ms_dims, frame_period)
    plot_scatter(out["scatter.png"], np.concatenate(nat_b),
                 {n: np.concatenate(b) for n, b in sys_b.items()}, scatter_dims)
    common = sorted(set(nat_utts).intersection(*[set(f) for f in plotted.values()]))
    if utt is None:
        if not common:
            raise VawganError("report: no utterance common to all systems; pass --utt")
        utt = common[0]
    elif utt not in ref or ref[utt] not in ok:
        raise VawganError(f"--utt {utt}: not a readable reference utterance")
    trajs = {"natural": feats[ref[utt]].body[:, traj_dim - 1]}
    for n, files in plotted.items():
        if utt in files:
            trajs[n] = feats[files[utt]].body[:, traj_dim - 1]
        else:
            notes.append(f"{n}: has no utterance {utt}; left out of the trajectory plot")
    colors = {n: _color(i) for i, n in enumerate(["natural", *plotted])}
    plot_trajectory(out["trajectory.png"], trajs, traj_dim, frame_period, utt, colors)
    if result.get("failures"):
        notes.append(f"{len(result['failures'])} unreadable file(s), left out: "
                     + "; ".join(result["failures"][:5]))
    md_table = markdown_table(result)
    columns = {**({"source": sources} if sources else {}), "natural": ref, **systems}
    links = copy_listening_audio(outdir, columns, pick_utterances(columns, listen))
    section = section_html(result, md_table, notes,
                           listening_table_html(links, list(columns)))
    out["metrics.json"] = outdir / "metrics.json"
    atomic_write_text(out["metrics.json"], json.dumps(result, indent=1, default=str))
    out["index.md"] = outdir / "index.md"
    atomic_write_text(out["index.md"], _page_md(result, notes))
    out["listen.json"] = outdir / "listen.json"
    atomic_write_text(out["listen.json"], json.dumps(
        {"columns": list(columns), "rows": links, "notes": notes}, indent=1))
    out["index.html"] = outdir / "index.html"
    atomic_write_text(out["index.html"], page_html("Over-smoothing report", section))
    for row in links.values():
        for rel in row.values():
            out[rel] = outdir / rel
    return out


def gather_page(outdir: Path, reports: Sequence[str], title: str, intro_html: str = ""
                ) -> Path:
    """``<outdir>/index.html``: the reports ``<outdir>/<name>/`` (each written by
    :func:`make_report`) on one page, a section each, links relative to ``outdir``.

    Parameters
    ----------
    outdir : Path
    reports : sequence of str
        Sub-folder names (e.g. the pairs ``SF1-TF1``), in page order.
    title : str
    intro_html : str
        HTML put before the sections (e.g. a summary table).
    """
    from .evaluate import markdown_table

    body = [intro_html]
    for name in reports:
        d = outdir / name
        try:
            result = json.loads((d / "metrics.json").read_text(encoding="utf-8"))
            listen = json.loads((d / "listen.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise VawganError(f"{d}: not a report folder ({type(e).__name__})") from None
        prefix = f"{name}/"
        players = listening_table_html(listen["rows"], listen["columns"], prefix)
        body.append(f"<h2 id='{html.escape(name)}'>{html.escape(name)}</h2>"
                    + section_html(result, markdown_table(result), listen["notes"], players,
                                   prefix))
    path = outdir / "index.html"
    atomic_write_text(path, page_html(title, "".join(body)))
    return path


def load_eval_json(path: Path, systems) -> Dict[str, Any]:
    """The result of an earlier ``vawgan evaluate --out-json`` that has every system of ``systems``."""
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VawganError(f"{path}: no such evaluate JSON file") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise VawganError(f"{path}: not a JSON file") from None
    try:
        check_result(result)
    except VawganError as e:
        raise VawganError(f"{path}: {e}") from None
    missing = [n for n in systems if n not in result.get("systems", {})]
    if missing:
        raise VawganError(f"{path}: has no results for system {missing[0]}")
    return result
