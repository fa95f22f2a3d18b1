#!/usr/bin/env bash
# Benchmark resbak against tar, pigz, sha256sum and tar -xzf on the same generated data.
#
# usage: bench/run.sh [SCRATCH_DIR]
#   SCRATCH_DIR  where datasets, archives and timings go (default: a new temp folder); needs a few
#                GB free. Restores are timed on /dev/shm (file creation on ext4 slows with reuse).
# env:  RUNS=3            runs per command; the table shows medians (peak RSS: the largest)
#       SETS="mixed small" datasets: mixed = 1 GiB realistic folder, small = 50,000 small files,
#                          mixed200 = 200 MiB (shows memory stays flat)
#       LEVEL=6 THREADS=   resbak --level / --threads (THREADS empty: all cores)
# The data comes from the project's own generator (examples/make_results.rs), built here with
# resbak. Needs cargo, python3 (for the table), GNU tar, gzip, sha256sum, /usr/bin/time; pigz
# optional. As root it installs the missing Debian packages (time, pigz); otherwise it skips
# what is missing and says so.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
RUNS=${RUNS:-3}
SETS=${SETS:-"mixed small"}
LEVEL=${LEVEL:-6}
THREADS=${THREADS:-}
scratch=${1:-$(mktemp -d)}
mkdir -p "$scratch"
scratch=$(cd "$scratch" && pwd)
shm=/dev/shm/resbak-bench-$$
trap 'rm -rf "$shm"' EXIT

need() { command -v "$1" >/dev/null 2>&1; }
install_missing() {
  local missing=()
  [ -x /usr/bin/time ] || missing+=(time)
  need pigz || missing+=(pigz)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && need apt-get; then
    echo "installing ${missing[*]}" >&2
    apt-get update -qq >/dev/null && apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}
install_missing
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is required (Debian package 'time')" >&2; exit 2; }
need pigz || echo "bench: pigz not installed: skipping the pigz rows" >&2
echo "building resbak and the data generator (release)" >&2
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" --bin resbak --example make_results
resbak="$repo/target/release/resbak"
gen="$repo/target/release/examples/make_results"
threads_arg=()
[ -n "$THREADS" ] && threads_arg=(--threads "$THREADS")

tsv="$scratch/times.tsv"
: > "$tsv"

# measure SET NAME OUTPUT_OR_- SETUP CMD: RUNS timed runs, one TSV line each.
measure() {
  local set=$1 name=$2 out=$3 setup=$4 cmd=$5 r e u s p m size
  for r in $(seq 1 "$RUNS"); do
    bash -c "$setup"
    /usr/bin/time -o "$scratch/.t" -f "%e %U %S %P %M" bash -c "$cmd" >/dev/null 2>"$scratch/.err" \
      || { echo "bench: $name failed:" >&2; cat "$scratch/.err" >&2; exit 1; }
    read -r e u s p m < "$scratch/.t"
    size=0
    [ "$out" = "-" ] || size=$(du -sb "$out" | cut -f1)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$set" "$name" "$e" "${p%\%}" "$m" "$size" "$r" >> "$tsv"
    echo "$set $name run $r: ${e}s cpu ${p} rss ${m}KB" >&2
  done
}

dataset() {
  local set=$1 data="$scratch/data-$1"
  if [ ! -d "$data/$set" ]; then
    case $set in
      mixed) "$gen" "$data" --strategy "$set" --size 1G --seed 1 -q ;;
      mixed200) "$gen" "$data" --strategy "$set" --size 200M --seed 1 -q ;;
      small) "$gen" "$data" --strategy "$set" --size 200M --files 50000 --seed 2 -q ;;
      *) echo "bench: unknown set $set" >&2; exit 2 ;;
    esac
  fi
  echo "$data"
}

for set in $SETS; do
  data=$(dataset "$set")
  work="$scratch/work-$set"
  rm -rf "$work"; mkdir -p "$work"
  gz="$work/tar.tar.gz"; bk="$work/backups"
  tar -cf - -C "$data" "$set" | cat >/dev/null   # warm the page cache
  rb="$resbak --results-dir $data --backup-dir $bk"

  measure "$set" "tar -czf" "$gz" "rm -f $gz" "tar -czf $gz -C $data $set"
  if need pigz; then
    pz="$work/pigz.tar.gz"
    measure "$set" "tar | pigz -p 2" "$pz" "rm -f $pz" "tar -cf - -C $data $set | pigz -p 2 > $pz"
    rm -f "$pz"
  fi
  measure "$set" "resbak backup" "$bk" "rm -rf $bk" \
    "$rb backup $set --always --level $LEVEL ${threads_arg[*]:-}"
  archive=$(ls "$bk"/*.tar.gz)
  measure "$set" "gzip -6 size" "$gz" "true" "true"
  measure "$set" "sha256sum" - "true" "sha256sum $gz"
  measure "$set" "resbak verify" - "true" "$rb verify"
  measure "$set" "resbak verify --deep" - "true" "$rb verify --deep"
  measure "$set" "tar -xzf (shm)" - "rm -rf $shm; mkdir -p $shm" "tar -xzf $gz -C $shm"
  measure "$set" "resbak restore (shm)" - "rm -rf $shm; mkdir -p $shm" \
    "$rb restore $(basename "$archive") --to $shm/$set"
  rm -rf "$shm"
done

python3 - "$tsv" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
order = []
for line in open(sys.argv[1]):
    s, name, wall, cpu, rss, size, run = line.rstrip("\n").split("\t")
    if (s, name) not in rows:
        order.append((s, name))
    rows[(s, name)].append((float(wall), float(cpu or 0), int(rss), int(size)))
peer = {"resbak backup": "tar -czf", "resbak verify": "sha256sum",
        "resbak verify --deep": "sha256sum", "resbak restore (shm)": "tar -xzf (shm)"}
def med(s, n): return statistics.median(r[0] for r in rows[(s, n)])
print(f"{'set':8} {'command':22} {'wall s':>8} {'cpu %':>6} {'peak RSS':>10} {'output':>12}  ratio")
for s, n in order:
    r = rows[(s, n)]
    wall = med(s, n); cpu = statistics.median(x[1] for x in r)
    rss = max(x[2] for x in r); size = r[-1][3]
    ratio = ""
    if n in peer and (s, peer[n]) in rows:
        ratio = f"{wall / max(med(s, peer[n]), 1e-9):.2f}x {peer[n]}"
    if n == "resbak backup" and (s, "gzip -6 size") in rows:
        gz = rows[(s, "gzip -6 size")][-1][3]
        ratio += f", size {size / gz:.4f}x gzip -6"
    if n == "gzip -6 size":
        continue
    print(f"{s:8} {n:22} {wall:8.2f} {cpu:6.0f} {rss/1024:8.1f}MiB {size/2**20:10.1f}MiB  {ratio}")
PY
