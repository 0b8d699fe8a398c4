#!/usr/bin/env bash
# Builds the solution and runs every test: checks the deployment side (infra/check.sh: Bicep, Dockerfiles, the app
# settings contract), restores NuGet and npm packages, starts Azurite (the Azure Storage emulator) for the storage
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

# The web app's browser tests drive Debian's headless Chromium: install it (and its driver) when missing.
./scripts/install-browser.sh

source scripts/azurite.sh
azurite_start "$root/.artifacts/azurite"
trap azurite_stop EXIT

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
# The reliability suites' counts (inputs tried, faults injected, items lost), as docs/reliability.md records them.
[ -s "$results/reliability.log" ] && sort "$results/reliability.log"
print_summary
exit $status
