#!/usr/bin/env bash
# Runs the `wuerstchen` command line, building it first (Release, into .artifacts/cli; incremental after the first
# time). The build applies the TorchSharp native-library fix where the system needs it. Arguments go to the command:
#   ./scripts/wuerstchen.sh generate "a red pokemon with wings" --width 1024 --height 1536
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
command -v dotnet >/dev/null || { echo "error: the .NET SDK (dotnet) is not on PATH; install .NET 10." >&2; exit 2; }

out="$root/.artifacts/cli"
if [ ! -f "$out/wuerstchen.dll" ]; then
  echo "Building the wuerstchen command for the first time (restore and build, a minute or two)…" >&2
fi
if ! build_log=$(dotnet build "$root/src/Wuerstchen.Cli/Wuerstchen.Cli.csproj" -c Release -o "$out" -v quiet -clp:NoSummary 2>&1); then
  echo "$build_log" >&2
  echo "error: the build failed (see above)." >&2
  exit 2
fi
exec dotnet "$out/wuerstchen.dll" "$@"
