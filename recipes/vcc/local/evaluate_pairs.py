#!/usr/bin/env python3
"""Stage 5 of the VCC2016 recipe: evaluate every converted pair and write the report.

For each source-target pair, the systems ``vae``, ``vawgan``, ``vawgan+<pf>`` (from
``EXP/convert/<set>/<system>/<SRC>-<TGT>/``) and ``vocoder`` (analysis-synthesis of the
target's own sentences) are compared with the target's natural recordings of the same
sentences through ``vawgan.evaluate.evaluate`` (one code path for every system). GV and
MS distances are per pair (a converted set against its target); the tables give the
mean over pairs, over the four headline pairs of the quality bar
(SF1-TF1, SM1-TM1, SF1-TM1, SM1-TF1) and over all pairs.

Writes ``EXP/results_<set>.json``, ``EXP/results_<set>.md`` and the over-smoothing
report of the headline pairs under ``EXP/report_<set>/``, with ``index.html``: the
listening page (metric tables, audio players and figures of every headline pair). The JSON keeps the units of
``vawgan.uttmetrics`` (``vuv_error`` a fraction); the Markdown tables show V/UV error in
percent (``vawgan.evaluate.format_metric``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

HEADLINE = ["SF1-TF1", "SM1-TM1", "SF1-TM1", "SM1-TF1"]
KEYS = [("mcd", "MCD [dB]", "{:.2f}"), ("f0_rmse", "F0 RMSE [Hz]", "{:.1f}"),
        ("logf0_corr", "log-F0 corr", "{:.3f}"), ("vuv_error", "V/UV err [%]", "{:.1f}"),
        ("gv_distance", "GVD", "{:.3f}"), ("gv_distance_mcd", "GVD c1..c24", "{:.3f}"),
        ("ms_distance", "MSD [dB]", "{:.2f}"), ("spk_sim", "spk sim", "{:.3f}"),
        ("spk_id_acc", "spk ID [%]", "{:.1f}")]
#: shown only when measured (speaker similarity: headline pairs, vawgan[eval])
OPTIONAL_KEYS = ("spk_sim", "spk_id_acc")


def read_list(path: Path) -> dict:
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            out[Path(line).stem] = Path(line)
    return out


def wavs(folder: Path) -> dict:
    return {p.stem: p for p in sorted(folder.glob("*.wav"))} if folder.is_dir() else {}


def mean_over(results: dict, pairs: list, system: str) -> dict:
    out = {}
    for key, _, _ in KEYS:
        vals = [results[p]["systems"][system]["summary"].get(key) for p in pairs
                if system in results[p]["systems"]]
        if key in OPTIONAL_KEYS and any(v is None for v in vals):
            out[key] = None  # measured on some pairs only (speaker similarity: headline)
            continue
        vals = [v for v in vals if v is not None and math.isfinite(v)]
        out[key] = sum(vals) / len(vals) if vals else None
    out["n_pairs"] = sum(1 for p in pairs if system in results[p]["systems"])
    return out


def keys_of(summary: dict) -> list:
    """:data:`KEYS` less the optional ones that no system has."""
    return [k for k in KEYS if k[0] not in OPTIONAL_KEYS
            or any(s.get(k[0]) is not None for s in summary.values())]


def table(summary: dict) -> str:
    """Markdown table of ``{system: mean_over(...)}``; V/UV error shown in percent."""
    from vawgan.evaluate import format_metric

    keys = keys_of(summary)
    rows = ["| system | pairs | " + " | ".join(h for _, h, _ in keys) + " |",
            "| --- | ---: |" + " ---: |" * len(keys)]
    for name, s in summary.items():
        cells = [format_metric(k, s.get(k), f) for k, _, f in keys]
        rows.append(f"| {name} | {s['n_pairs']} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def speaker_centroids_of(args):
    """Centroids of every training speaker (first ``--centroid-utts`` of its training
    sentences), cached in ``EXP/speaker_centroids.npz``; None when ``--speaker-sim auto``
    and the encoder is not installed."""
    from vawgan.errors import VawganError
    from vawgan.speaker import load_encoder, speaker_centroids

    try:
        load_encoder()
    except VawganError as e:
        if args.speaker_sim == "on":
            raise
        print(f"evaluate_pairs: no speaker similarity ({e})", file=sys.stderr)
        return None
    from vawgan.corpus import is_audio

    corpus = Path((args.data / "corpus").read_text().strip())
    by_spk: dict = {}
    for line in (args.data / "train.list").read_text().splitlines():
        if line.strip():  # speaker/utt
            spk, utt = line.strip().split("/", 1)
            by_spk.setdefault(spk, []).append(utt)
    speakers = {}
    for spk, utts in sorted(by_spk.items()):
        files = []
        for utt in sorted(utts)[:args.centroid_utts]:
            files += [p for p in sorted((corpus / spk).glob(f"{utt}.*")) if is_audio(p)][:1]
        speakers[spk] = files
    return speaker_centroids(speakers, args.exp / "speaker_centroids.npz")


def html_table(summary: dict) -> str:
    """HTML version of :func:`table`."""
    import html

    from vawgan.evaluate import format_metric

    keys = keys_of(summary)
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h, _ in keys)
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{s['n_pairs']}</td>"
        + "".join(f"<td>{format_metric(k, s.get(k), f)}</td>" for k, _, f in keys) + "</tr>"
        for name, s in summary.items())
    return f"<table><tr><th>system</th><th>pairs</th>{head}</tr>{rows}</table>"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exp", type=Path, required=True)
    ap.add_argument("--set", default="dev")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--pairs", required=True, help="space-separated SRC-TGT pairs")
    ap.add_argument("--postfilter", default="gv")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--config", type=Path, default=None, help="recipe YAML (feature section)")
    ap.add_argument("--no-report", action="store_true")
    ap.add_argument("--speaker-sim", choices=("auto", "on", "off"), default="auto",
                    help="speaker similarity of the headline pairs (vawgan[eval]); auto: "
                         "when the speaker encoder is installed")
    ap.add_argument("--centroid-utts", type=int, default=20,
                    help="training utterances per speaker for its centroid")
    ap.add_argument("--listen", type=int, default=4,
                    help="sentences per pair with audio players on the listening page")
    args = ap.parse_args(argv)

    from vawgan.config import load_config
    from vawgan.evaluate import evaluate, markdown_table
    from vawgan.errors import VawganError
    from vawgan.io import atomic_write_text

    cfg = load_config(args.config)
    conv = args.exp / "convert" / args.set
    systems_order = ["vae", "vawgan", f"vawgan+{args.postfilter}", "vocoder"]
    cache: dict = {}
    results, inputs = {}, {}
    pairs = args.pairs.split()
    centroids = speaker_centroids_of(args) if args.speaker_sim != "off" else None
    embeddings: dict = {}
    for pair in pairs:
        tgt = pair.split("-")[1]
        ref_list = args.data / args.set / f"{tgt}.list"
        if not ref_list.exists():
            continue
        ref = read_list(ref_list)
        systems = {}
        for name in systems_order:
            folder = conv / "vocoder" / tgt if name == "vocoder" else conv / name / pair
            files = wavs(folder)
            if files:
                systems[name] = files
        if not systems:
            print(f"evaluate_pairs: {pair}: nothing converted under {conv}", file=sys.stderr)
            continue
        print(f"evaluate_pairs: {args.set} {pair}: {', '.join(systems)}", file=sys.stderr)
        try:
            spk = (centroids, tgt) if centroids is not None and pair in HEADLINE else None
            res, feats = evaluate(ref, systems, cfg.feature, jobs=args.jobs,
                                  ms_fft=cfg.stats.ms_fft, features=cache, speaker=spk,
                                  embeddings=embeddings)
        except VawganError as e:
            print(f"evaluate_pairs: {pair}: {e}", file=sys.stderr)
            continue
        cache.update(feats)
        results[pair] = res
        inputs[pair] = (ref, systems)
    if not results:
        print("evaluate_pairs: nothing to evaluate", file=sys.stderr)
        return 1

    names = [n for n in systems_order if any(n in r["systems"] for r in results.values())]
    headline = [p for p in HEADLINE if p in results]
    summary_head = {n: mean_over(results, headline, n) for n in names} if headline else {}
    summary_all = {n: mean_over(results, list(results), n) for n in names}
    doc = {"set": args.set, "pairs": results, "headline_pairs": headline,
           "summary_headline": summary_head, "summary_all": summary_all}
    atomic_write_text(args.exp / f"results_{args.set}.json", json.dumps(doc, indent=1))

    md = [f"# Results on the {args.set} set ({args.exp.name})\n"]
    if headline:
        md += [f"## Headline pairs ({', '.join(headline)}), mean over pairs\n", table(summary_head)]
    md += [f"## All {len(results)} pairs, mean over pairs\n", table(summary_all)]
    md += ["## Per pair: MCD [dB] / GVD\n",
           "| pair | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names)]
    for pair, res in results.items():
        cells = []
        for n in names:
            s = res["systems"].get(n, {}).get("summary")
            cells.append("n/a" if not s or s.get("mcd") is None
                         else f"{s['mcd']:.2f} / {s['gv_distance']:.3f}")
        md.append(f"| {pair} | " + " | ".join(cells) + " |")
    md.append("\nMCD on c1..c24 after DTW over non-silent frames; GVD = mean over c1..c39 of "
              "|log10(GV_conv / GV_target)|; MSD = RMS log modulation-spectrum difference. "
              "VCC2016 data: Toda et al., Interspeech 2016.\n")
    atomic_write_text(args.exp / f"results_{args.set}.md", "\n".join(md) + "\n")

    if not args.no_report:
        from vawgan.report import gather_page, make_report

        report_dir = args.exp / f"report_{args.set}"
        index = [f"# Over-smoothing report ({args.exp.name}, {args.set})\n", "\n".join(md[1:3])]
        shown = headline or list(results)[:1]
        for pair in shown:
            ref, systems = inputs[pair]
            src_list = args.data / args.set / f"{pair.split('-')[0]}.list"
            sources = read_list(src_list) if src_list.exists() else None
            make_report(report_dir / pair, results[pair], cache, ref, systems,
                        silence_db=cfg.feature.silence_db, ms_fft=cfg.stats.ms_fft,
                        frame_period=cfg.feature.frame_period, sources=sources,
                        listen=args.listen)
            index += [f"\n## {pair}\n", markdown_table(results[pair]),
                      f"![GV]({pair}/gv.png)\n![MS]({pair}/ms.png)\n"
                      f"![scatter]({pair}/scatter.png)\n![trajectory]({pair}/trajectory.png)\n"]
        atomic_write_text(report_dir / "index.md", "\n".join(index) + "\n")
        # the listening page: every shown pair's table, players and figures
        intro = (f"<p>{args.exp.name}, {args.set} set. Mean over the pairs "
                 f"{', '.join(headline or shown)}:</p>"
                 + html_table(summary_head or summary_all)
                 + "<p>Each pair below: its metric table, audio players (source, natural "
                 "target, each system, the vocoder floor) and the over-smoothing figures. "
                 "MCD on c1..c24 after DTW over non-silent frames.</p>")
        gather_page(report_dir, shown, f"vawgan listening page: {args.exp.name} ({args.set})",
                    intro)
    print(f"evaluate_pairs: wrote {args.exp}/results_{args.set}.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
