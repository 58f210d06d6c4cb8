#!/usr/bin/env python3
"""Stage -1 of the VCC2016 recipe: download the official zips from Edinburgh DataShare.

The Voice Conversion Challenge 2016 data is published at
https://datashare.ed.ac.uk/handle/10283/2211 (cite Toda et al., Interspeech 2016).
This fetches ``vcc2016_training.zip`` (and ``evaluation_all.zip``), checks that each
is a complete zip with the expected speaker folders, and unpacks it into ``--out``.
Offline it stops with a message saying how to pass ``--db`` instead.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

BASE = "https://datashare.ed.ac.uk/bitstream/handle/10283/2211"
FILES = {
    "vcc2016_training.zip": "vcc2016_training",
    "evaluation_all.zip": "evaluation_all",
}
SPEAKERS = ["SF1", "SF2", "SF3", "SM1", "SM2", "TF1", "TF2", "TM1", "TM2", "TM3"]


def fetch(url: str, dest: Path, timeout: float) -> None:
    tmp = dest.with_name(dest.name + ".part")
    with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:
        total = int(r.headers.get("Content-Length") or 0)
        done = 0
        while True:
            chunk = r.read(1 << 20)
            if not chunk:
                break
            f.write(chunk)
            done += len(chunk)
            if total:
                print(f"\r  {dest.name}: {done / 2**20:.0f} / {total / 2**20:.0f} MiB", end="", flush=True)
    print()
    tmp.replace(dest)


def check_and_unpack(zpath: Path, folder: str, out: Path) -> None:
    try:
        with zipfile.ZipFile(zpath) as z:
            bad = z.testzip()
            if bad is not None:
                raise SystemExit(f"download: {zpath}: corrupt member {bad}; delete it and rerun")
            names = z.namelist()
            missing = [s for s in SPEAKERS if not any(f"{folder}/{s}/" in n for n in names)]
            if missing:
                raise SystemExit(f"download: {zpath}: speakers {missing} missing from the archive")
            z.extractall(out)
    except zipfile.BadZipFile:
        raise SystemExit(f"download: {zpath}: not a complete zip file; delete it and rerun") from None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("downloads"))
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--base-url", default=BASE)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for zname, folder in FILES.items():
        if (args.out / folder).is_dir():
            print(f"download: {args.out / folder} already there")
            continue
        zpath = args.out / zname
        if not zpath.exists():
            url = f"{args.base_url}/{zname}"
            print(f"download: {url}")
            try:
                fetch(url, zpath, args.timeout)
            except (urllib.error.URLError, OSError, TimeoutError) as e:
                reason = getattr(e, "reason", e)
                print(f"download: cannot fetch {url} ({reason}). This machine may be offline: "
                      "download vcc2016_training.zip by hand from "
                      "https://datashare.ed.ac.uk/handle/10283/2211 and pass its folder with "
                      "--db /path/to/vcc2016 (the folder holding vcc2016_training/)",
                      file=sys.stderr)
                return 1
        check_and_unpack(zpath, folder, args.out)
        print(f"download: unpacked {zname} into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
