#!/usr/bin/env bash
# Host overhead per sampling step of this checkout against an earlier commit, measured side by side on this machine:
# builds the benchmark's host-overhead mode (src/Wuerstchen.Benchmarks/HostOverhead.cs, which uses only API the older
# commit also has) against BASE in a separate folder, then runs the two builds interleaved: ROUNDS rounds, each one run of
# either build (order alternating), each run REPEATS generations after a warm-up, one torch thread. On a shared machine
# the load drifts between runs, so the change is the median of the rounds' paired ratios (new / base of the same round);
# the medians of each build's figures are printed beside it.
#   usage: scripts/compare-host-overhead.sh [BASE=e1b93ed] [ROUNDS=10] [REPEATS=2]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
base=${1:-e1b93ed}
rounds=${2:-10}
repeats=${3:-2}
work="$root/.artifacts/host-overhead"
fixtures=${WUERSTCHEN_PARITY_DIR:-$root/../shared/fixtures/parity}
tokenizer="$fixtures/models/prior-pipeline/tokenizer"
[ -d "$tokenizer" ] || { echo "error: no CLIP tokenizer at $tokenizer (set WUERSTCHEN_PARITY_DIR)." >&2; exit 2; }
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

rm -rf "$work/base"
mkdir -p "$work/base"
git archive "$base" | tar -x -C "$work/base"
cp src/Wuerstchen.Benchmarks/HostOverhead.cs "$work/base/src/Wuerstchen.Benchmarks/"
cat > "$work/base/src/Wuerstchen.Benchmarks/Program.cs" <<'CS'
// Written by scripts/compare-host-overhead.sh: only the host-overhead mode, with the current command line's options.
var arguments = args.ToList();
string Option(string name, string fallback) => arguments.IndexOf(name) is var i and >= 0 && i + 1 < arguments.Count ? arguments[i + 1] : fallback;
TorchSharp.torch.set_num_threads(int.Parse(Option("--threads", "1")));
return Wuerstchen.Benchmarks.HostOverhead.Run(Option("--tokenizer", ""), int.Parse(Option("--repeats", "5")), Console.Out);
CS
echo "Building the benchmark at $base and at this checkout ($(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ', with uncommitted changes'))…" >&2
dotnet build -c Release -v q -nologo "$work/base/src/Wuerstchen.Benchmarks" >&2
dotnet build -c Release -v q -nologo src/Wuerstchen.Benchmarks >&2

results="$work/runs.jsonl"
: > "$results"
run() { # label dll round
  dotnet "$2" --host-overhead --repeats "$repeats" --threads 1 --tokenizer "$tokenizer" | sed "s/^{/{\"build\": \"$1\", \"round\": $3, /" >> "$results"
}
for ((round = 1; round <= rounds; round++)); do
  echo "round $round of $rounds" >&2
  if ((round % 2)); then order="base new"; else order="new base"; fi
  for build in $order; do
    if [ "$build" = base ]; then run base "$work/base/src/Wuerstchen.Benchmarks/bin/Release/net10.0/Wuerstchen.Benchmarks.dll" "$round"
    else run new "src/Wuerstchen.Benchmarks/bin/Release/net10.0/Wuerstchen.Benchmarks.dll" "$round"; fi
  done
done

python3 - "$results" "$base" "$(git rev-parse --short HEAD)" "$rounds" "$repeats" <<'PY'
import json, statistics, sys
path, base, head, rounds, repeats = sys.argv[1:]
runs = [json.loads(line) for line in open(path)]
metrics = [("stageCStepCpuMs", "Stage C step, CPU time of the sampling thread (median step)"),
           ("stageCPerStepCpuMs", "Stage C, process CPU time of the stage / 29 steps"),
           ("stageBStepCpuMs", "Stage B step, CPU time of the sampling thread (median step)"),
           ("stageBPerStepCpuMs", "Stage B, process CPU time of the stage / 12 steps"),
           ("stageCStepMs", "Stage C step, wall clock (median step)"),
           ("stageBStepMs", "Stage B step, wall clock (median step)")]
print(f"Host overhead per step (ms), {base} vs {head}: {rounds} interleaved rounds, each run {repeats} generations after a warm-up")
print()
print(f"| figure | {base} (median) | {head} (median) | change (median of paired rounds) | range of the rounds |")
print("| --- | ---: | ---: | ---: | ---: |")
for key, label in metrics:
    old = statistics.median(r[key] for r in runs if r["build"] == "base")
    new = statistics.median(r[key] for r in runs if r["build"] == "new")
    ratios = []
    for round_ in sorted({r["round"] for r in runs}):
        a = [r[key] for r in runs if r["round"] == round_ and r["build"] == "base"]
        b = [r[key] for r in runs if r["round"] == round_ and r["build"] == "new"]
        if a and b:
            ratios.append(statistics.median(b) / statistics.median(a))
    change = 100 * (statistics.median(ratios) - 1)
    print(f"| {label} | {old:.1f} | {new:.1f} | {change:+.0f} % | {100 * (min(ratios) - 1):+.0f} % to {100 * (max(ratios) - 1):+.0f} % |")
PY
