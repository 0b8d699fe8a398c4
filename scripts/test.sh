#!/usr/bin/env bash
# Builds the solution and runs every test: checks the deployment side (infra/check.sh: Bicep, Dockerfiles, the app
# settings contract) and the code's format and style (scripts/check-format.sh: .editorconfig; the .NET analyzers run
# in the build), restores NuGet and npm packages, starts Azurite (the Azure Storage emulator) for the storage
# tests, and stops it again. Extra arguments go to `dotnet test` (e.g. --filter).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

command -v dotnet >/dev/null || { echo "error: the .NET SDK (dotnet) is not on PATH; install .NET 10." >&2; exit 2; }
command -v npm >/dev/null || { echo "error: npm is not on PATH; install Node.js 20 or later (Azurite runs on it)." >&2; exit 2; }
command -v python3 >/dev/null || { echo "error: python3 is not on PATH (infra/check.sh uses it)." >&2; exit 2; }

# Deployment checks first; a failure fails the run but the .NET tests still run and report.
status=0
./infra/check.sh || status=$?
./scripts/check-format.sh || status=$?

# The web app's browser tests drive Debian's headless Chromium: install it (and its driver) when missing.
./scripts/install-browser.sh

source scripts/azurite.sh
azurite_start "$root/.artifacts/azurite"
trap azurite_stop EXIT

# The Functions host for the host integration tests (tests/Wuerstchen.Functions.HostTests), built from
# ../shared/tools/functions-host once and cached in .artifacts/functions-host.
host_start=$SECONDS
if scripts/functions-host.sh >/dev/null; then
  echo "Functions host: ready in $((SECONDS - host_start)) s (.artifacts/functions-host)."
else
  echo "error: the Functions host could not be built; the host integration tests will fail." >&2
  status=1
fi

results="$root/.artifacts/test-results"
rm -rf "$results"
# Tests that need a GPU carry the trait Category=Cuda and are filtered out here (scripts/gpu-benchmark.sh run runs
# them on a GPU machine); a --filter given to this script is combined with that one.
filter="Category!=Cuda"
args=()
while [ $# -gt 0 ]; do
  if [ "$1" = --filter ] && [ $# -ge 2 ]; then filter="($2)&$filter"; shift 2; else args+=("$1"); shift; fi
done
dotnet test Wuerstchen.Functions.sln -c Release --logger "trx" --results-directory "$results" --filter "$filter" "${args[@]}" || status=$?

# One closing line in the plain "N passed, N failed" form, summed over every test project's TRX file.
print_summary() {
  local passed=0 failed=0 skipped=0 f p q s
  for f in "$results"/*.trx; do
    [ -e "$f" ] || continue
    p=$(grep -o 'passed="[0-9]*"' "$f" | head -1 | grep -o '[0-9]*' || echo 0)
    q=$(grep -o 'failed="[0-9]*"' "$f" | head -1 | grep -o '[0-9]*' || echo 0)
    s=$(grep -c 'outcome="NotExecuted"' "$f" || true)
    passed=$((passed + p)); failed=$((failed + q)); skipped=$((skipped + s))
  done
  echo "Tests: $passed passed, $failed failed, $skipped skipped"
}
# How long each test project took (the host integration layer starts real hosts: it is the long one), and the figures
# that layer measured (start-up, restart after a kill, orchestration latency).
print_durations() {
  python3 - "$results" <<'PY'
import glob, re, sys
from datetime import datetime
def when(text):
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", text))
for path in sorted(glob.glob(sys.argv[1] + "/*.trx")):
    trx = open(path, encoding="utf-8").read()
    times = re.search(r'<Times [^>]*start="([^"]+)"[^>]*finish="([^"]+)"', trx)
    project = re.search(r'codeBase="[^"]*?([^/\\"]+)\.dll"', trx)
    if times and project:
        seconds = int((when(times.group(2)) - when(times.group(1))).total_seconds())
        print(f"  {project.group(1)}: {seconds // 60} min {seconds % 60:02d} s")
PY
  if [ -s "$root/.artifacts/host-tests/figures.txt" ]; then
    echo "Figures of the host integration layer (.artifacts/host-tests/figures.txt; host logs beside it):"
    sed 's/^/  /' "$root/.artifacts/host-tests/figures.txt"
  fi
}
print_durations || true
# The reliability suites' counts (inputs tried, faults injected, items lost), as docs/reliability.md records them.
[ -s "$results/reliability.log" ] && sort "$results/reliability.log"
print_summary
exit $status
