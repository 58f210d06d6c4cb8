"""``vawgan extract``: a corpus of audio files -> a dump of feature files (:mod:`vawgan.extract`)."""

from __future__ import annotations

import argparse
import sys

from ..config import load_config
from ..corpus import list_speakers, read_utt_list
from ..parallel import check_jobs
from ..io import check_writable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", required=True, help="corpus root: <root>/<speaker>/<utt>.<ext>")
    parser.add_argument("--out", required=True,
                        help="dump directory (written <out>/<speaker>/<utt>.npz)")
    parser.add_argument("--speakers", nargs="+", metavar="SPK", help="only these speakers")
    parser.add_argument("--utts-file", help="only the utterances listed (one speaker/utt per line)")
    parser.add_argument("--config", help="YAML config (feature and extract sections)")
    parser.add_argument("--f0-dir", help="per-speaker f0 ranges: <dir>/<speaker>.yaml")
    parser.add_argument("--jobs", type=int, default=None, help="parallel workers (-1 = all cores)")
    parser.add_argument("--scheduler", help="Dask scheduler address tcp://HOST:PORT")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _log(msg: str) -> None:
    """One-line report while the progress bar runs (above it, on stderr)."""
    from tqdm import tqdm

    tqdm.write(msg, file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """0 when every file was extracted (or found done), 1 when some failed (the others
    are kept and listed in the manifest) or nothing is in the dump."""
    from ..extract import extract_corpus

    cfg = load_config(args.config)
    check_writable(args.out, folder=True)  # before analysing anything
    f0_ranges = None
    if args.f0_dir:
        from ..f0 import load_f0_ranges

        f0_ranges = load_f0_ranges(args.f0_dir)
    utts = read_utt_list(args.utts_file) if args.utts_file else None
    jobs = check_jobs(args.jobs if args.jobs is not None else cfg.extract.jobs)
    scheduler = args.scheduler or cfg.extract.scheduler
    speakers = args.speakers
    if f0_ranges is not None:
        listed_spk = set(speakers) if speakers else set(list_speakers(args.corpus))
        missing = sorted(listed_spk - set(f0_ranges))
        if missing:
            print(f"warning: no f0 range in {args.f0_dir} for {', '.join(missing)}; "
                  f"using {cfg.feature.f0_floor:g}-{cfg.feature.f0_ceil:g} Hz", file=sys.stderr)
    res = extract_corpus(args.corpus, args.out, cfg, speakers=speakers, jobs=jobs,
                         scheduler=scheduler, f0_ranges=f0_ranges, utts=utts,
                         progress=not args.no_progress, log=_log)
    print(res.summary())
    if res.failures:
        print(f"failures ({len(res.failures)}):")
        for f in res.failures:
            print(f"  {f['error']}")
    print(f"manifest: {res.manifest}")
    if not res.utterances:
        why = ("every file failed (listed above)" if res.failures else
               "no audio files found (expected <corpus>/<speaker>/<utt>.wav, .flac, ...)")
        print(f"vawgan extract: error: {args.corpus}: {why}", file=sys.stderr)
        return 1
    return 1 if res.failures else 0
