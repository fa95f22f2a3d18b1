#!/usr/bin/env bash
# Encrypted against plain push of the same archive to an S3 server (Garage on loopback), and the
# peak memory of encrypted push and pull.
#
# usage: eval "$(.ci/garage-start)"; bench/remote.sh [SCRATCH_DIR]; garage_stop
# env:  SIZE=1800M  size of the generated results folder; backed up with --level 1 it gives an
#                   archive of about 1 GiB
#       RUNS=3      runs of each; plain and encrypted alternate, starting with the other one each run
#       SEED=1      generator seed
# Each run first backs up again with one small file at the top of the tree changed (its length
# too), so the archive is new bytes from there on: Garage stores each block once, and a plain
# push of bytes it already holds (an earlier run's, until its garbage collection) writes less
# than an encrypted push, whose bytes are new every time. Level 0 is not used for the same
# reason: Garage compresses blocks, which helps an uncompressed archive but not its ciphertext.
# Reads RESBAK_TEST_S3_ENDPOINT, RESBAK_TEST_S3_BUCKET, RESBAK_TEST_S3_REGION, AWS_ACCESS_KEY_ID
# and AWS_SECRET_ACCESS_KEY (as .ci/garage-start exports them). The data comes from the project's
# own generator (examples/make_results.rs). Each run pushes under a fresh key prefix and deletes
# its objects afterwards (signed DELETEs with curl). Prints wall time, user and system CPU time
# and peak RSS (/usr/bin/time -v) for each run, then the medians and the throughput ratio.
set -euo pipefail
: "${RESBAK_TEST_S3_ENDPOINT:?}" "${RESBAK_TEST_S3_BUCKET:?}" "${RESBAK_TEST_S3_REGION:?}"
: "${AWS_ACCESS_KEY_ID:?}" "${AWS_SECRET_ACCESS_KEY:?}"
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
SIZE=${SIZE:-1800M}
RUNS=${RUNS:-3}
SEED=${SEED:-1}
scratch=${1:-$(mktemp -d)}
mkdir -p "$scratch"
scratch=$(cd "$scratch" && pwd)
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is required (Debian package 'time')" >&2; exit 2; }

echo "building resbak and the data generator (release)" >&2
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" --bin resbak --example make_results
resbak="$repo/target/release/resbak"
gen="$repo/target/release/examples/make_results"

cd "$scratch"
if [ ! -d results/bench ]; then
  echo "generating $SIZE of results" >&2
  "$gen" results --size "$SIZE" --seed "$SEED" --strategy bench --quiet
fi
[ -f offsite.key ] || "$resbak" key generate offsite.key >/dev/null
recipient=$(grep -o 'age1[0-9a-z]*' offsite.key | head -1)
# fresh RUN: a new backup with results/bench/0000_run.txt rewritten; sets $archive.
fresh() {
  # (yes ends on SIGPIPE, which pipefail would report)
  { yes "run $1 of $$" || true; } | head -c $((1000 + 4097 * $1)) > results/bench/0000_run.txt
  "$resbak" backup bench --level 1 >/dev/null
  archive=$(cd backups && ls -t bench_*.tar.gz | head -1)
  echo "run $1: $archive, $(stat -c %s "backups/$archive") bytes" >&2
}

# config PREFIX: resbak.toml with remotes plain and sealed under PREFIX.
config() {
  local common="endpoint = \"$RESBAK_TEST_S3_ENDPOINT\"
bucket = \"$RESBAK_TEST_S3_BUCKET\"
region = \"$RESBAK_TEST_S3_REGION\"
allow_http = true"
  cat > resbak.toml <<TOML
[remote.plain]
$common
prefix = "$1/plain"
encrypt = false

[remote.sealed]
$common
prefix = "$1/sealed"
recipients = ["$recipient"]
identity_file = "$scratch/offsite.key"
TOML
  cp resbak.toml there/resbak.toml
}

s3=(curl -s -o /dev/null --aws-sigv4 "aws:amz:$RESBAK_TEST_S3_REGION:s3"
  --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
# forget PREFIX: deletes every object a push under PREFIX made.
forget() {
  local base="$RESBAK_TEST_S3_ENDPOINT/$RESBAK_TEST_S3_BUCKET/$1"
  for object in plain/$archive plain/$archive.idx sealed/$archive.age sealed/$archive.idx.age \
    plain/$archive.entry.yaml sealed/$archive.entry.yaml; do
    "${s3[@]}" -X DELETE "$base/$object"
  done
}

# timed LABEL DIR CMD...: runs CMD in DIR under /usr/bin/time -v; one line of figures.
timed() {
  local label=$1 dir=$2
  shift 2
  (cd "$dir" && /usr/bin/time -v -o "$scratch/time.txt" "$@" >/dev/null)
  awk -v label="$label" -F': ' '
    /Elapsed \(wall clock\)/ { n = split($2, t, ":"); wall = (n == 3 ? t[1] * 3600 + t[2] * 60 + t[3] : t[1] * 60 + t[2]) }
    /User time/ { user = $2 } /System time/ { sys = $2 } /Maximum resident/ { rss = $2 }
    END { printf "%s\t%.2f\t%.2f\t%.2f\t%.1f\n", label, wall, user, sys, rss / 1024 }' "$scratch/time.txt" | tee -a "$scratch/times.tsv"
}

mkdir -p there
: > times.tsv
sizes=""
printf 'what\twall_s\tuser_s\tsys_s\tpeak_rss_mib\n'
for run in $(seq 1 "$RUNS"); do
  fresh "$run"
  prefix="resbak-bench-remote-$$-$run"
  config "$prefix"
  if [ $((run % 2)) = 1 ]; then order="plain sealed"; else order="sealed plain"; fi
  for mode in $order; do
    timed "push $mode" "$scratch" "$resbak" push "$archive" --remote "$mode"
  done
  for mode in $order; do
    rm -rf there/backups
    timed "pull $mode" "$scratch/there" "$resbak" pull "$archive" --remote "$mode"
  done
  rm -rf there/backups
  forget "$prefix"
  sizes="$sizes $(stat -c %s "backups/$archive")"
done

size=$(echo $sizes | tr ' ' '\n' | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")
python3 - "$scratch/times.tsv" "$size" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
size = int(sys.argv[2])
by = {}
for what, wall, user, sys_, rss in rows:
    by.setdefault(what, []).append((float(wall), float(user), float(sys_), float(rss)))
print("\nmedians of %d runs, archive %.0f MiB" % (len(by["push plain"]), size / 2**20))
print("what          wall s   MiB/s   user s   sys s   peak RSS MiB (max)")
for what, runs in by.items():
    med = lambda i: statistics.median(r[i] for r in runs)
    print("%-12s %7.2f %7.1f %8.2f %7.2f %10.1f" % (what, med(0), size / 2**20 / med(0), med(1), med(2), max(r[3] for r in runs)))
ratio = statistics.median(r[0] for r in by["push plain"]) / statistics.median(r[0] for r in by["push sealed"])
print("encrypted push throughput: %.2fx plain" % ratio)
PY
