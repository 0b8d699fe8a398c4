#!/usr/bin/env bash
# Builds the Azure Functions host (what `func start` runs) from ../shared/tools/functions-host into the ignored cache
# .artifacts/functions-host, once: later runs reuse it until the tool's sources change. Prints the folder holding
# Microsoft.Azure.WebJobs.Script.WebHost.dll on its last line. The host integration tests
# (tests/Wuerstchen.Functions.HostTests) run the Functions app under it.
# Usage: scripts/functions-host.sh   (WUERSTCHEN_FUNCTIONS_HOST_TOOL overrides the tool folder)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tool=${WUERSTCHEN_FUNCTIONS_HOST_TOOL:-$root/../shared/tools/functions-host}
cache="$root/.artifacts/functions-host"
bin="$cache/host/out/bin/WebJobs.Script.WebHost/release"

if [ ! -x "$tool/build.sh" ] || [ ! -f "$tool/functions-host-src.tar.gz" ]; then
  echo "error: the Functions host tool is not at $tool (expected ../shared/tools/functions-host beside the repository;" \
       "set WUERSTCHEN_FUNCTIONS_HOST_TOOL)." >&2
  exit 2
fi

# The cache is keyed by the tool's sources and scripts: a changed archive is extracted and built afresh.
stamp=$(cat "$tool/functions-host-src.tar.gz" "$tool/build.sh" | sha256sum | cut -c1-16)
if [ -f "$bin/Microsoft.Azure.WebJobs.Script.WebHost.dll" ] && [ "$(cat "$cache/.stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "$bin"
  exit 0
fi

rm -rf "$cache"
mkdir -p "$cache"
# The cache lies inside this repository: without these, MSBuild would import the repository's own Directory.*.props
# (central package versions, warnings as errors) into the host's projects.
for file in Directory.Build.props Directory.Build.targets Directory.Packages.props; do
  echo '<Project><!-- The Functions host builds with its own settings, not the repository'"'"'s. --></Project>' >"$cache/$file"
done
start=$SECONDS
echo "Building the Functions host from $tool into $cache (first time: restores ~240 packages)..." >&2
# Without CI in its environment: under CI the host's SDK projects embed SourceLink and ask git for this checkout's
# remote.origin.url, which a clone without an origin (or a worktree) does not have.
built=$(env -u CI "$tool/build.sh" "$cache" | tail -n 1)
[ "$built" = "$bin" ] || { echo "error: the host build put its output in '$built', not '$bin'." >&2; exit 1; }
echo "$stamp" >"$cache/.stamp"
echo "Functions host built in $((SECONDS - start)) s." >&2
echo "$bin"
