"""The listening part of a report: audio players beside the figures.

A conversion is judged by ear first. :func:`copy_listening_audio` copies a few
utterances of every column (the source recording, the natural target, each system)
into the report folder as 16-bit WAV, so that the folder can be zipped or served as it
is; :func:`listening_table_html` makes the HTML table of ``<audio>`` players (one row
per utterance, one column per system) with relative links only.

Used by :func:`vawgan.report.make_report` (``vawgan report --source DIR --listen N``)
and by the recipe's report page (``recipes/vcc/local/evaluate_pairs.py``).

:func:`open_browser`, :class:`serve` and :func:`check_page` open such a page in a real
headless browser (the system's chromium, driven by selenium) and report every figure
and player that does not load: the test of the page, and the docs' screenshot.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Dict, List, Mapping, Sequence

from .io import PathLike

#: utterances per report that get players (``vawgan report --listen``)
LISTEN_DEFAULT = 4
#: the folder under a report that holds the copied audio
AUDIO_DIR = "audio"


def safe_name(name: str) -> str:
    """A file-name-safe version of a system name (``vawgan+gv`` -> ``vawgan_gv``)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "_"


def pick_utterances(columns: Mapping[str, Mapping[str, PathLike]], n: int) -> List[str]:
    """The first ``n`` utterance names (sorted) that every column has; if none is in all
    of them, the first ``n`` of the natural-target column (or the first column)."""
    if n <= 0 or not columns:
        return []
    sets = [set(c) for c in columns.values() if c]
    common = sorted(set.intersection(*sets)) if sets else []
    if common:
        return common[:n]
    first = columns.get("natural") or next(iter(columns.values()))
    return sorted(first)[:n]


def copy_listening_audio(outdir: PathLike, columns: Mapping[str, Mapping[str, PathLike]],
                         utts: Sequence[str]) -> Dict[str, Dict[str, str]]:
    """Copy ``columns[name][utt]`` to ``<outdir>/audio/<name>/<utt>.wav`` (16-bit PCM,
    mono, the file's own rate; atomic).

    Parameters
    ----------
    outdir : path
        The report folder.
    columns : mapping of column name -> {utterance: audio path}
        E.g. ``{"source": ..., "natural": ..., "vae": ..., "vawgan": ...}``, in the
        order the page shows them.
    utts : sequence of str
        The rows.

    Returns
    -------
    dict
        ``{utt: {column: link relative to outdir}}``; a file that is missing or
        unreadable has no entry (the page shows a dash).
    """
    from .audio import read_audio, write_audio
    from .errors import VawganError

    outdir = Path(outdir)
    links: Dict[str, Dict[str, str]] = {u: {} for u in utts}
    for name, files in columns.items():
        for u in utts:
            src = files.get(u)
            if src is None:
                continue
            rel = f"{AUDIO_DIR}/{safe_name(name)}/{safe_name(u)}.wav"
            try:
                x, fs = read_audio(src)
            except VawganError:
                continue
            dst = outdir / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            write_audio(dst, x, fs, subtype="PCM_16")
            links[u][name] = rel
    return links


def listening_table_html(links: Mapping[str, Mapping[str, str]], columns: Sequence[str],
                         prefix: str = "") -> str:
    """An HTML table of audio players: a row per utterance, a column per name.

    ``prefix`` is put before every link (a page one folder up: ``"SF1-TF1/"``).
    """
    if not links:
        return ""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    rows = []
    for u, row in links.items():
        cells = []
        for c in columns:
            rel = row.get(c)
            cells.append("<td>&ndash;</td>" if rel is None else
                         f'<td><audio controls preload="metadata" '
                         f'src="{html.escape(prefix + rel)}"></audio></td>')
        rows.append(f"<tr><th>{html.escape(u)}</th>{''.join(cells)}</tr>")
    return (f"<table class='listen'><tr><th>utterance</th>{head}</tr>{''.join(rows)}</table>")


# ------------------------------------------------------------------ browser check
#: resolves every <img> and <audio> of a page: {title, images: [...], audio: [...]}
CHECK_JS = """
const done = arguments[arguments.length - 1];
const imgs = Array.from(document.images);
const auds = Array.from(document.querySelectorAll('audio'));
const waitImg = im => im.complete ? Promise.resolve() :
  new Promise(r => { im.onload = r; im.onerror = r; });
const waitAud = a => new Promise(r => {
  if (a.readyState >= 1) { r(); return; }
  a.addEventListener('loadedmetadata', r, {once: true});
  a.addEventListener('error', r, {once: true});
  a.load();
});
Promise.all([...imgs.map(waitImg), ...auds.map(waitAud)]).then(() => done({
  title: document.title,
  images: imgs.map(im => ({src: im.getAttribute('src'), w: im.naturalWidth})),
  audio: auds.map(a => ({src: a.getAttribute('src'), duration: a.duration,
                         error: a.error ? a.error.code : null}))
}));
"""

#: chromium flags for a closed network and no display
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic", "--mute-audio")


def open_browser(width: int = 1280, height: int = 2000):
    """Headless chromium driven by selenium (the system's ``chromium`` and
    ``chromedriver``; nothing is downloaded), with the HTTP cache off. RuntimeError
    naming what is missing."""
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_bin = shutil.which("chromedriver")
    missing = [n for n, ok in (("chromium", chromium), ("chromedriver", driver_bin)) if not ok]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("selenium")
    if missing:
        raise RuntimeError(f"needs {', '.join(missing)} (apt-get install chromium "
                           "chromium-driver; pip install selenium)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in CHROMIUM_FLAGS + (f"--window-size={width},{height}",):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(driver_bin), options=opts)
    # every load from the server (a cached figure would hide a broken one)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    return driver


class serve:
    """Serve a folder on localhost while in the ``with`` block (what a user does with
    ``python -m http.server``); ``.url`` is its address."""

    def __init__(self, root: PathLike):
        import functools
        import http.server
        import threading

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

        handler = functools.partial(Quiet, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "serve":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def check_page(driver, url: str, timeout: float = 60.0) -> Dict[str, object]:
    """Load ``url`` and resolve every image and audio element.

    Returns
    -------
    dict
        ``title``, ``images`` (``{src, w}``: natural width, 0 = broken), ``audio``
        (``{src, duration, error}``) and ``broken``: the sources of the images that did
        not load and of the audio elements with an error or no duration > 0.
    """
    driver.set_script_timeout(timeout)
    driver.get(url)
    res = driver.execute_async_script(CHECK_JS)
    res["broken"] = ([i["src"] for i in res["images"] if not i["w"]]
                     + [a["src"] for a in res["audio"]
                        if a["error"] is not None or not (a["duration"] or 0) > 0])
    return res
