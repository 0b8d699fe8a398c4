#!/usr/bin/env bash
# Checks the C# code against .editorconfig without changing anything; scripts/test.sh runs it first. Alone:
# ./scripts/check-format.sh. To fix what it reports: ./scripts/check-format.sh --fix (then review the diff).
#   1. Whitespace and layout of every .cs file (dotnet format whitespace; no build needed).
#   2. Code style at severity warning through the solution (dotnet format style): the usings' order and the
#      preferences .editorconfig marks :warning (file-scoped namespaces, usings outside them, accessibility modifiers,
#      modifier order, readonly fields, predefined types, no this., names).
# The .NET analyzers (AnalysisLevel in Directory.Build.props) run in every build, where TreatWarningsAsErrors makes a
# violation fail it.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

verify=(--verify-no-changes)
if [ "${1:-}" = --fix ]; then verify=(); fi

status=0
if dotnet format whitespace --folder "${verify[@]}" --exclude '**/bin/**' '**/obj/**' '**/node_modules/**' '.artifacts/**' -v q; then
  echo "format: ok    whitespace"
else
  echo "format: FAIL  whitespace: run ./scripts/check-format.sh --fix, or see the lines above" >&2
  status=1
fi
# The style check loads the solution, so it needs the packages restored (test.sh restores them; alone, this restores).
if dotnet format style Wuerstchen.Functions.sln "${verify[@]}" --severity warn -v q; then
  echo "format: ok    code style (.editorconfig, severity warning)"
else
  echo "format: FAIL  code style: run ./scripts/check-format.sh --fix, or see the lines above" >&2
  status=1
fi
exit $status
