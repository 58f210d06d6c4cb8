#!/usr/bin/env python3
"""Held-out-speaker experiment of ``vawgan enroll`` on VCC2016.

A model trained without TM3 (``run.sh --conf conf/grid/heldout_tm3.yaml --tag
heldout_tm3 --stop_stage 3``) gets TM3 enrolled from its first N training sentences
(from the stage-1 dump: the same features), for each N; the dev sentences of the
sources (default SF1 and SM1) are converted to it, with and without the GV postfilter,
and evaluated against TM3's natural dev recordings exactly as stage 5 does; the model
trained with TM3 from the start (``exp/default``) is converted and evaluated the same
way. Writes ``EXP/enroll_<spk>/results.md`` and ``results.json``.

    python local/enroll_experiment.py --base exp/heldout_tm3/vawgan.pt --full exp/default/vawgan.pt
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{r.stderr.strip()[-2000:]}")
    return r


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, required=True, help="bundle trained without --speaker")
    ap.add_argument("--full", type=Path, required=True, help="bundle trained with it")
    ap.add_argument("--speaker", default="TM3")
    ap.add_argument("--name", default=None,
                    help="name given to the enrolled speaker (default --speaker)")
    ap.add_argument("--sources", default="SF1,SM1")
    ap.add_argument("--ns", default="10,20,50", help="sentences enrolled")
    ap.add_argument("--data", type=Path, default=Path("data/default"))
    ap.add_argument("--dump", type=Path, default=Path("dump/feats"))
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--enroll-args", default="",
                    help="more options of vawgan enroll, e.g. '--adv-steps 0'")
    args = ap.parse_args(argv)
    spk = args.speaker
    name_enr = args.name or spk
    out = args.out or args.base.parent / f"enroll_{spk}"
    out.mkdir(parents=True, exist_ok=True)
    train = sorted(line.split("/", 1)[1] for line in (args.data / "train.list").read_text().split()
                   if line.startswith(spk + "/"))
    sources = args.sources.split(",")

    def feature_list(path: Path, speaker: str, utts):
        path.write_text("".join(f"{(args.dump / speaker / u).resolve()}.npz\n" for u in utts))
        return path

    def dev_utts(speaker):
        return [Path(p).stem for p in (args.data / "dev" / f"{speaker}.list").read_text().split()]

    systems = {}  # name -> (bundle, target name)
    timing = {}
    for n in map(int, args.ns.split(",")):
        lst = feature_list(out / f"train{n}.list", spk, train[:n])
        bundle = out / f"enrolled{n}.pt"
        t0 = time.perf_counter()
        if not bundle.exists():
            r = run(["vawgan", "enroll", "--name", name_enr, "--in", str(lst), "--out", str(bundle),
                     "--model", str(args.base), "--workdir", str(out / f"work{n}"),
                     "--no-progress", *args.enroll_args.split()])
            print(r.stdout.strip().splitlines()[0], file=sys.stderr)
        timing[n] = time.perf_counter() - t0
        systems[f"enrolled N={n}"] = bundle
    systems["trained with it"] = args.full
    results = {}
    for name, bundle in systems.items():
        target = spk if name == "trained with it" else name_enr
        for src in sources:
            lst = feature_list(out / f"dev_{src}.list", src, dev_utts(src))
            tag = name.replace(" ", "_").replace("=", "")
            for pf in ("none", "gv"):
                conv = out / "convert" / tag / pf / f"{src}-{spk}"
                run(["vawgan", "convert", "--model", str(bundle), "--source", src,
                     "--target", target, "--postfilter", pf, "--in", str(lst), "--out", str(conv),
                     "--jobs", str(args.jobs)])
            js = out / "eval" / f"{tag}_{src}.json"
            js.parent.mkdir(parents=True, exist_ok=True)
            run(["vawgan", "evaluate", "--ref", str(args.data / "dev" / f"{spk}.list"),
                 "--system", f"raw={out / 'convert' / tag / 'none' / f'{src}-{spk}'}",
                 "--system", f"gv={out / 'convert' / tag / 'gv' / f'{src}-{spk}'}",
                 "--config", "conf/default.yaml", "--jobs", str(args.jobs),
                 "--out-json", str(js)])
            results[(name, src)] = json.loads(js.read_text())["systems"]
            print(f"{name} {src}-{spk}: done", file=sys.stderr)
    rows = ["| model | pair | MCD [dB] | GVD | MSD [dB] | + GV postfilter MCD / GVD / MSD |",
            "| --- | --- | ---: | ---: | ---: | --- |"]
    doc = {"speaker": spk, "enroll_seconds": timing,
           "peak_rss_mb_children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
           "pairs": {}}
    for name in systems:
        means = {"raw": [], "gv": []}
        for src in sources:
            s = results[(name, src)]
            r, g = s["raw"]["summary"], s["gv"]["summary"]
            means["raw"].append(r)
            means["gv"].append(g)
            doc["pairs"][f"{name} {src}-{spk}"] = {"raw": r, "gv": g}
            rows.append(f"| {name} | {src}-{spk} | {r['mcd']:.2f} | {r['gv_distance']:.3f} | "
                        f"{r['ms_distance']:.2f} | {g['mcd']:.2f} / {g['gv_distance']:.3f} / "
                        f"{g['ms_distance']:.2f} |")
        m = {k: {key: sum(x[key] for x in v) / len(v) for key in ("mcd", "gv_distance",
                                                                  "ms_distance")}
             for k, v in means.items()}
        rows.append(f"| **{name}** | mean | **{m['raw']['mcd']:.2f}** | "
                    f"{m['raw']['gv_distance']:.3f} | {m['raw']['ms_distance']:.2f} | "
                    f"**{m['gv']['mcd']:.2f}** / {m['gv']['gv_distance']:.3f} / "
                    f"{m['gv']['ms_distance']:.2f} |")
        doc["pairs"][f"{name} mean"] = m
    md = "\n".join(rows) + "\n"
    md += "\nEnrollment wall time (analysis from the dump, training, bundle): " + ", ".join(
        f"N={n}: {t:.1f} s" for n, t in timing.items()) + "\n"
    (out / "results.md").write_text(md)
    (out / "results.json").write_text(json.dumps(doc, indent=1))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
