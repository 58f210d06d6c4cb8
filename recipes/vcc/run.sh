#!/usr/bin/env bash
# VCC2016 recipe for vawgan: corpus -> features -> statistics -> VAE and VAW-GAN ->
# converted dev (and eval) speech -> objective evaluation and the over-smoothing report.
#
#   bash run.sh                                  # everything, default config
#   bash run.sh --db ../../../shared/data/vcc2016 --stage 1 --stop_stage 3
#   bash run.sh --conf conf/debug.yaml --tag debug   # tiny end-to-end run (CI)
#
# Stages (each skips work already done, so a rerun resumes):
#  -1 download   VCC2016 zips from Edinburgh DataShare into downloads/ (needs internet)
#   0 data prep  lists and the train / dev (100151-100162) / eval split
#   1 extract    WORLD features of every utterance -> dump/feats
#   2 stats      per-speaker statistics of the training split -> dump/<tag>/stats.json
#   3 train      VAE (phase 1) and VAW-GAN bundles -> exp/<tag>/{vae,vawgan}.pt
#   4 convert    dev (and eval) sentences of every configured pair, for the VAE, the
#                VAW-GAN and the postfiltered VAW-GAN, plus vocoder resynthesis
#   5 evaluate   results.json, results.md and report/ (GV, MS, scatter, trajectories)
set -euo pipefail

log() { echo "[$(date -u +%H:%M:%S)] $(basename "$0") $*" >&2; }
# wall time of each stage, appended to exp/<tag>/timing.tsv (stage, seconds, date)
stage_t0=0
stage_begin() { stage_t0=$(date +%s); }
stage_end() { printf '%s\t%d\t%s\n' "$1" $(( $(date +%s) - stage_t0 )) "$(date -u +%FT%TZ)" >> "$exp/timing.tsv"; }
die() { log "error: $*"; exit 1; }

script="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
cd "$(dirname "$script")"  # the recipe folder, from wherever it was started

# ------------------------------------------------------------------ options
stage=-1            # first stage to run
stop_stage=5        # last stage to run
db=""               # VCC2016 folder (holding vcc2016_training/); empty = downloads/ or ../../../shared/data/vcc2016
conf=conf/default.yaml
jobs=2              # parallel jobs for extraction, conversion and evaluation
tag=""              # experiment name; default = config file name
device=auto         # auto | cpu | cuda
postfilter=gv       # postfilter of the third system evaluated: gv | ms
pf_first=""         # first mel-cepstral order the postfilter acts on; empty = vawgan's default
eval_sets="dev"     # which sets stage 4/5 convert: "dev" or "dev eval"

usage() { sed -n '2,20p' "$script" | sed 's/^# \{0,1\}//'; echo "options: --stage --stop_stage --db --conf --jobs --tag --device --postfilter --pf_first --eval_sets"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --stage) stage=$2; shift 2 ;;
        --stop_stage) stop_stage=$2; shift 2 ;;
        --db) db=$2; shift 2 ;;
        --conf) conf=$2; shift 2 ;;
        --jobs) jobs=$2; shift 2 ;;
        --tag) tag=$2; shift 2 ;;
        --device) device=$2; shift 2 ;;
        --postfilter) postfilter=$2; shift 2 ;;
        --pf_first) pf_first=$2; shift 2 ;;
        --eval_sets) eval_sets=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option $1" ;;
    esac
done

[ -f "$conf" ] || die "config $conf not found"
[ -n "$tag" ] || tag=$(basename "$conf" .yaml)
command -v vawgan >/dev/null || die "vawgan is not installed in this environment (pip install -e ../..)"

data=data/$tag
dump=dump
feats=$dump/feats
stats=$dump/$tag/stats.json
exp=exp/$tag
mkdir -p "$exp"

# ------------------------------------------------------------------ stage -1: download
if [ -z "$db" ]; then
    if [ -d downloads/vcc2016_training ]; then
        db=downloads
    elif [ -d ../../../shared/data/vcc2016/vcc2016_training ]; then
        db=../../../shared/data/vcc2016
    fi
fi
if [ "$stage" -le -1 ] && [ "$stop_stage" -ge -1 ]; then
    if [ -n "$db" ]; then
        log "stage -1: data found at $db, nothing to download"
    else
        log "stage -1: downloading VCC2016 into downloads/"
        python local/download.py --out downloads || die "download failed (see above); pass --db"
        db=downloads
    fi
fi
[ -n "$db" ] || die "no VCC2016 data: run stage -1 (needs internet) or pass --db /path/to/vcc2016"

# ------------------------------------------------------------------ stage 0: data prep
if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
    stage_begin
    log "stage 0: data prep from $db -> $data"
    python local/data_prep.py --db "$db" --conf "$conf" --out "$data"
    stage_end 0_data_prep
fi
corpus=$(cat "$data/corpus" 2>/dev/null) || die "$data/corpus missing: run stage 0"
sets=""
for s in $eval_sets; do
    [ -f "$data/$s.list" ] && sets="$sets $s"
done

# ------------------------------------------------------------------ stage 1: features
if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
    stage_begin
    log "stage 1: feature extraction ($jobs jobs) -> $feats"
    cat "$data/train.list" "$data/dev.list" > "$data/extract.list"
    # exit code 1 when some file failed: the others are in the dump, the failures listed
    vawgan extract --corpus "$corpus" --out "$feats" --config "$conf" \
        --f0-dir conf/f0 --utts-file "$data/extract.list" --jobs "$jobs" \
        || die "stage 1: some files could not be extracted (listed above); fix them or take them out of $data/{train,dev}.list, then rerun from --stage 1"
    if [ -f "$data/eval.list" ]; then
        vawgan extract --corpus "$(cat "$data/eval_corpus")" --out "$dump/feats_eval" \
            --config "$conf" --f0-dir conf/f0 --utts-file "$data/eval.list" --jobs "$jobs" \
            || die "stage 1: some eval files could not be extracted (listed above)"
    fi
    stage_end 1_extract
fi

# ------------------------------------------------------------------ stage 2: statistics
if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
    stage_begin
    log "stage 2: statistics of the training split -> $stats"
    mkdir -p "$(dirname "$stats")"
    vawgan stats --dump "$feats" --utts-file "$data/train.list" --config "$conf" --out "$stats" \
        --jobs "$jobs"
    stage_end 2_stats
fi

# ------------------------------------------------------------------ stage 3: training
if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
    stage_begin
    if [ -f "$exp/vawgan.pt" ]; then
        log "stage 3: $exp/vawgan.pt exists, skipping training"
    else
        log "stage 3: training (device $device) -> $exp"
        resume=""
        [ -f "$exp/checkpoint.pt" ] && resume="--resume"
        vawgan train --dump "$feats" --stats "$stats" --utts-file "$data/train.list" \
            --config "$conf" --outdir "$exp" --device "$device" $resume
    fi
    stage_end 3_train
fi

# ------------------------------------------------------------------ stage 4: conversion
pairs=$(python - "$conf" <<'PY'
import sys
from vawgan.config import load_config
print(" ".join(f"{s}-{t}" for s, t in load_config(sys.argv[1]).data.conversion_pairs()))
PY
)
if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
    stage_begin
    # every system and target converts the features stage 1 extracted (the same
    # analysis code and settings; each source sentence analysed once, not 15 times)
    feature_list() {  # $1 wav list, $2 feature folder: absolute .npz paths
        while read -r wav; do
            [ -n "$wav" ] && echo "$PWD/$2/$(basename "$(dirname "$wav")")/$(basename "${wav%.*}").npz"
        done < "$1"
    }
    for set in $sets; do
        fdir=$feats
        [ "$set" = dev ] || fdir=$dump/feats_$set
        lists=$exp/convert/$set/lists
        mkdir -p "$lists"
        for src in $(printf '%s\n' $pairs | sed 's/-.*//' | awk '!seen[$0]++'); do
            [ -f "$data/$set/$src.list" ] || continue
            tgts=$(printf '%s\n' $pairs | awk -F- -v s="$src" '$1 == s {print $2}' | paste -sd, -)
            feature_list "$data/$set/$src.list" "$fdir" > "$lists/$src.list"
            log "stage 4: $set $src -> $tgts"
            for sys in vae vawgan; do
                vawgan convert --model "$exp/$sys.pt" --source "$src" --target "$tgts" \
                    --postfilter none --in "$lists/$src.list" \
                    --out "$exp/convert/$set/$sys/$src-{target}" --jobs "$jobs" \
                    || die "stage 4: conversion failed for some files (listed above)"
            done
            vawgan convert --model "$exp/vawgan.pt" --source "$src" --target "$tgts" \
                --postfilter "$postfilter" ${pf_first:+--pf-first "$pf_first"} --in "$lists/$src.list" \
                --out "$exp/convert/$set/vawgan+$postfilter/$src-{target}" --jobs "$jobs" \
                || die "stage 4: conversion failed for some files (listed above)"
        done
        # vocoder floor: resynthesis of the natural target sentences (from their features)
        for tgt in $(printf '%s\n' $pairs | sed 's/.*-//' | awk '!seen[$0]++'); do
            [ -f "$data/$set/$tgt.list" ] || continue
            feature_list "$data/$set/$tgt.list" "$fdir" > "$lists/$tgt.list"
            vawgan analysis-synthesis --in "$lists/$tgt.list" --out "$exp/convert/$set/vocoder/$tgt" \
                --config "$conf" --jobs "$jobs" --no-metrics \
                || die "stage 4: vocoder floor failed for some files (listed above)"
        done
    done
    stage_end 4_convert
fi

# ------------------------------------------------------------------ stage 5: evaluation
if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
    stage_begin
    for set in $sets; do
        log "stage 5: evaluation of $set -> $exp/results_$set.json, $exp/report_$set/"
        python local/evaluate_pairs.py --exp "$exp" --set "$set" --data "$data" --config "$conf" \
            --pairs "$pairs" --postfilter "$postfilter" --jobs "$jobs"
    done
    log "done. Listening page: $exp/report_dev/index.html (open it in a browser); numbers: $exp/results_dev.md"
    [ -f "$exp/results_dev.md" ] && cat "$exp/results_dev.md"
    stage_end 5_evaluate
fi
