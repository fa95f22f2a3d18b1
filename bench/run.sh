#!/usr/bin/env bash
# Benchmark resbak against tar, pigz, sha256sum and tar -xzf on the same generated data.
#
# usage: bench/run.sh [SCRATCH_DIR]
#   SCRATCH_DIR  where datasets, archives and timings go (default: a new temp folder); needs a few
#                GB free. Restores are timed on /dev/shm (file creation on ext4 slows with reuse).
# env:  RUNS=3            runs per command; the table shows medians (peak RSS: the largest)
#       SETS="mixed small" datasets: mixed = 1 GiB realistic folder, small = 50,000 small files,
#                          mixed200 = 200 MiB (shows memory stays flat), mixed512 = 512 MiB
#       SECOND=1           also time a second backup after rewriting one run folder (resbak, borg
#                          create, restic backup when installed), cat of one file vs tar -xzOf,
#                          and ls
#       LEVEL=6 THREADS=   resbak --level / --threads (THREADS empty: all cores)
#       OLD_RESBAK=        another resbak binary (an earlier version, say) whose verify --deep and
#                          restore are timed in the same run, on a copy of the same backup folder
# The data comes from the project's own generator (examples/make_results.rs), built here with
# resbak. Needs cargo, python3 (for the table), GNU tar, gzip, sha256sum, /usr/bin/time; pigz
# optional, borg and restic optional (second-backup rows). As root it installs the missing Debian
# packages (time, pigz, borgbackup); otherwise it skips what is missing and says so.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
RUNS=${RUNS:-3}
SETS=${SETS:-"mixed small"}
SECOND=${SECOND:-1}
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
  [ "$SECOND" = 1 ] && ! need borg && missing+=(borgbackup)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && need apt-get; then
    echo "installing ${missing[*]}" >&2
    apt-get update -qq >/dev/null && apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}
install_missing
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is required (Debian package 'time')" >&2; exit 2; }
need pigz || echo "bench: pigz not installed: skipping the pigz rows" >&2
[ "$SECOND" = 1 ] && ! need borg && echo "bench: borg not installed: skipping the borg rows" >&2
echo "building resbak and the data generator (release)" >&2
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" --bin resbak --example make_results
resbak="$repo/target/release/resbak"
OLD_RESBAK=${OLD_RESBAK:-}
[ -z "$OLD_RESBAK" ] || [ -x "$OLD_RESBAK" ] || { echo "bench: OLD_RESBAK is not executable" >&2; exit 2; }
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
    # OUTPUT may be a glob (unquoted on purpose): the archive without its index.
    [ "$out" = "-" ] || size=$(du -sbc $out | tail -1 | cut -f1)
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
      mixed512) "$gen" "$data" --strategy "$set" --size 512M --seed 1 -q ;;
      small) "$gen" "$data" --strategy "$set" --size 200M --files 50000 --seed 2 -q ;;
      *) echo "bench: unknown set $set" >&2; exit 2 ;;
    esac
  fi
  echo "$data"
}

# second SET DATA WORK TAR_GZ: the rows that need an earlier backup or an archive's index.
second() {
  local set=$1 data=$2 work=$3 gz=$4 bk="$3/backups2" rb run file rel
  rb="$resbak --results-dir $data --backup-dir $bk"
  $rb backup "$set" --always -q
  archive=$(ls "$bk"/*.tar.gz)
  # ls: the whole listing, from the index.
  measure "$set" "resbak ls" - "true" "$rb ls $(basename "$archive")"
  # cat of the file closest to 10 MiB (the largest below 16 MiB), against tar -xzOf.
  file=$(find "$data/$set" -type f -size -16M -printf '%s %P\n' | sort -n | tail -1 | cut -d' ' -f2-)
  if [ -n "$file" ]; then
    measure "$set" "tar -xzOf one file" - "true" "tar -xzOf $gz $set/$file"
    measure "$set" "resbak cat one file" - "true" "$rb cat $(basename "$archive") $file"
  fi
  # A second backup after rewriting one run folder (every file in it gets a new line).
  run=$(find "$data/$set/runs" -mindepth 1 -maxdepth 1 -type d | sort | sed -n 1p)
  rewrite="for f in $run/*; do [ -f \$f ] && [ ! -L \$f ] && echo rewritten-\$RANDOM >> \$f; done; true"
  measure "$set" "resbak backup (2nd)" - "$rewrite" "$rb backup $set --always -q ${threads_arg[*]:-}"
  if need borg; then
    export BORG_CACHE_DIR="$work/borg-cache" BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
    borg init -e none "$work/borg" >/dev/null 2>&1
    borg create --compression lz4 "$work/borg::first" -- "$data/$set" >/dev/null 2>&1
    measure "$set" "borg create (2nd)" - "$rewrite" \
      "borg create --compression lz4 $work/borg::\$(date +%s%N) $data/$set"
  fi
  if need restic; then
    export RESTIC_PASSWORD=bench
    restic init -q -r "$work/restic" >/dev/null 2>&1
    restic backup -q -r "$work/restic" "$data/$set" >/dev/null 2>&1
    measure "$set" "restic backup (2nd)" - "$rewrite" "restic backup -q -r $work/restic $data/$set"
  fi
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
  measure "$set" "resbak backup" "$bk/*.tar.gz" "rm -rf $bk" \
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
  if [ -n "$OLD_RESBAK" ]; then
    # The same archive, catalogued by the other binary itself (reindex), in a folder of its own.
    ob="$work/backups-old"
    mkdir -p "$ob" && cp "$archive" "$ob/"
    orb="$OLD_RESBAK --results-dir $data --backup-dir $ob"
    $orb reindex -q >/dev/null
    measure "$set" "old verify --deep" - "true" "$orb verify --deep"
    measure "$set" "old restore (shm)" - "rm -rf $shm; mkdir -p $shm" \
      "$orb restore $(basename "$archive") --to $shm/$set"
    rm -rf "$shm" "$ob"
  fi
  [ "$SECOND" = 1 ] && second "$set" "$data" "$work" "$gz"
  rm -rf "$work"
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
        "resbak verify --deep": "sha256sum", "resbak restore (shm)": "tar -xzf (shm)",
        "resbak backup (2nd)": "borg create (2nd)", "resbak cat one file": "tar -xzOf one file"}
also = {"resbak backup (2nd)": "tar -czf", "resbak verify --deep": "old verify --deep",
        "resbak restore (shm)": "old restore (shm)"}
def med(s, n): return statistics.median(r[0] for r in rows[(s, n)])
print(f"{'set':8} {'command':22} {'wall s':>8} {'cpu %':>6} {'peak RSS':>10} {'output':>12}  ratio")
for s, n in order:
    r = rows[(s, n)]
    wall = med(s, n); cpu = statistics.median(x[1] for x in r)
    rss = max(x[2] for x in r); size = r[-1][3]
    ratio = ""
    if n in peer and (s, peer[n]) in rows:
        ratio = f"{wall / max(med(s, peer[n]), 1e-9):.2f}x {peer[n]}"
    if n in also and (s, also[n]) in rows:
        ratio += f", {wall / max(med(s, also[n]), 1e-9):.3f}x {also[n]}"
    if n == "resbak backup" and (s, "gzip -6 size") in rows:
        gz = rows[(s, "gzip -6 size")][-1][3]
        ratio += f", size {size / gz:.4f}x gzip -6"
    if n == "gzip -6 size":
        continue
    print(f"{s:8} {n:22} {wall:8.2f} {cpu:6.0f} {rss/1024:8.1f}MiB {size/2**20:10.1f}MiB  {ratio}")
PY
