#!/usr/bin/env bash
# Checks the deployment side (infra/) with the tools that run offline here; nothing is deployed, no image is built.
# scripts/test.sh runs it before the .NET tests; alone: ./infra/check.sh. Needs dotnet, npm and python3 (jq is used
# when present); brings the rest itself:
#   1. Bicep: the CLI from NuGet (infra/tools/tools.csproj). Build and lint every .bicep, build-params every .bicepparam;
#      any warning or error fails. A suppression must give its reason: `#disable-next-line <rule> // why`. Every
#      parameter and output needs a @description.
#   2. Dockerfiles: tools/dockerlint (npm, pinned by its lock file), dockerfile-utils plus the policy and build-context
#      rules of lint.js; an inline `# dockerfile-utils: ignore` needs a comment above it saying why. The HEALTHCHECK
#      script is run against a local HTTP server.
#   3. Settings contract: infra/app-settings.json must be exactly the env names of the Container App in the compiled
#      main.json. Then `bicep snapshot` evaluates each parameter file and infra/tools/check_deployment.py checks the
#      values against the contract and host.json (fixed settings, storage names, model mount, identity, probes, the
#      bounded model cache, no custom scale rules in the app and the override that replaces them, the failure-rate and
#      queue-age alerts of docs/operations.md), and the snapshot of
#      a first deployment's first step (deployApp=false).
#   4. infra/deploy.sh against a stand-in `az` (infra/tools/check_deploy_script.py: quota first, the first-deployment
#      order, the override PATCH after every deployment), host.json (finite functionTimeout, connectionName), and the
#      base-image lock file against the Dockerfiles.
# Prints one line per check and exits 1 if any failed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out="$root/.artifacts/infra"
rm -rf "$out"
mkdir -p "$out"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

# Placeholders for the values the parameter files read from the environment at deployment time.
check_image="example.azurecr.io/wuerstchen-functions:gpu-check"
check_registry="exampleacr"

failed=0
passed=0
pass() { echo "infra: ok    $1"; passed=$((passed + 1)); }
fail() {
  echo "infra: FAIL  $1"
  if [ -n "${2:-}" ] && [ -s "$2" ]; then sed 's/^/        /' "$2"; fi
  failed=$((failed + 1))
}
# A Bicep run is clean when it exits 0 and reports no warning or error (the linter's findings are warnings).
bicep_clean() { ! grep -Eq ' : (Warning|Error) ' "$1"; }

for tool in dotnet npm node python3; do
  command -v "$tool" >/dev/null || { echo "infra: FAIL  $tool is not on PATH" >&2; exit 2; }
done

# --- 1. Bicep ---------------------------------------------------------------------------------------------------------
if ! dotnet restore infra/tools/tools.csproj --nologo -v q >"$out/bicep-restore.log" 2>&1; then
  fail "restore the Bicep CLI (dotnet restore infra/tools/tools.csproj)" "$out/bicep-restore.log"
  echo "infra: the remaining checks need the Bicep CLI; stopping"
  exit 1
fi
bicep=$(dotnet msbuild infra/tools/tools.csproj -nologo -getProperty:BicepPath)
[ -x "$bicep" ] || chmod +x "$bicep"
echo "infra: using $("$bicep" --version) from NuGet"

mapfile -t bicep_files < <(find infra -name '*.bicep' -not -path '*/node_modules/*' | sort)
mapfile -t param_files < <(find infra -name '*.bicepparam' | sort)

if "$bicep" build --pattern 'infra/**/*.bicep' --outdir "$out/bicep" >"$out/bicep-build.log" 2>&1 \
   && bicep_clean "$out/bicep-build.log"; then
  pass "bicep build: ${#bicep_files[@]} files, no warnings"
else
  fail "bicep build" "$out/bicep-build.log"
fi

if "$bicep" lint --pattern 'infra/**/*.bicep' >"$out/bicep-lint.log" 2>&1 && bicep_clean "$out/bicep-lint.log"; then
  pass "bicep lint: ${#bicep_files[@]} files, no findings"
else
  fail "bicep lint" "$out/bicep-lint.log"
fi

# Suppressions must name their rules and say why; bicepconfig.json may raise rule levels but never switch one off.
grep -rnE '#disable-(next-line|diagnostics)' infra --include='*.bicep' --include='*.bicepparam' >"$out/suppressions.txt" || true
grep -vE '#disable-(next-line|diagnostics)( +[A-Za-z0-9-]+)+ +// *[^ ]' "$out/suppressions.txt" >"$out/suppressions-bad.txt" || true
grep -nEi '"level" *: *"(off|none)"' infra/bicepconfig.json >>"$out/suppressions-bad.txt" || true
if [ ! -s "$out/suppressions-bad.txt" ]; then
  pass "bicep suppressions: $(wc -l <"$out/suppressions.txt") in all, each with a reason; no rule turned off"
else
  fail "bicep suppressions without a reason, or rules turned off" "$out/suppressions-bad.txt"
fi

main_json="$out/bicep/main.json"
if [ -f "$main_json" ] && python3 infra/tools/check_deployment.py described "$main_json" >"$out/descriptions.log" 2>&1; then
  pass "bicep descriptions: $(sed -n 's/.*the \([0-9]*\) templates.*/\1/p' "$out/descriptions.log") templates, every parameter and output described"
else
  fail "bicep descriptions" "$out/descriptions.log"
fi

for f in "${param_files[@]}"; do
  name=$(basename "$f" .bicepparam)
  if WUERSTCHEN_IMAGE="$check_image" WUERSTCHEN_ACR_NAME="$check_registry" \
       "$bicep" build-params "$f" --outfile "$out/bicep/$name.parameters.json" >"$out/build-params-$name.log" 2>&1 \
     && bicep_clean "$out/build-params-$name.log"; then
    pass "bicep build-params $f"
  else
    fail "bicep build-params $f" "$out/build-params-$name.log"
  fi
done

# --- 2. Dockerfiles ---------------------------------------------------------------------------------------------------
lint_dir="$root/tools/dockerlint"
if [ ! -d "$lint_dir/node_modules/dockerfile-utils" ] || [ "$lint_dir/package-lock.json" -nt "$lint_dir/node_modules/.package-lock.json" ]; then
  npm ci --prefix "$lint_dir" --no-fund --no-audit --loglevel=error >"$out/dockerlint-install.log" 2>&1 \
    || fail "install the Dockerfile linter (npm ci in tools/dockerlint)" "$out/dockerlint-install.log"
fi
if node "$lint_dir/lint.js" "$root" infra/docker/Dockerfile.gpu infra/docker/Dockerfile.cpu >"$out/dockerlint.log" 2>&1; then
  while read -r _ file; do pass "dockerfile lint $file (dockerfile-utils + policy + build context)"; done <"$out/dockerlint.log"
else
  fail "dockerfile lint" "$out/dockerlint.log"
fi

# The HEALTHCHECK script against a throwaway HTTP server on loopback: 200 is healthy, 404 and a closed port are not.
www="$out/healthcheck-www"
mkdir -p "$www/api/health"
echo ok >"$www/api/health/ready"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$www" >"$out/healthcheck-server.log" 2>&1 &
server=$!
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
hc=infra/docker/healthcheck.sh
if HEALTHCHECK_PORT=$port bash "$hc" >"$out/healthcheck.log" 2>&1 \
   && ! HEALTHCHECK_PORT=$port HEALTHCHECK_PATH=/api/missing bash "$hc" >>"$out/healthcheck.log" 2>&1; then
  kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true
  if ! HEALTHCHECK_PORT=$port bash "$hc" >>"$out/healthcheck.log" 2>&1; then
    pass "healthcheck script: 200 healthy; 404 and a closed port unhealthy"
  else
    fail "healthcheck script passes with nothing listening" "$out/healthcheck.log"
  fi
else
  kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true
  fail "healthcheck script" "$out/healthcheck.log"
fi

# --- 3. Settings contract ---------------------------------------------------------------------------------------------
if [ ! -f "$main_json" ]; then
  fail "app settings: no compiled main.json"
elif command -v jq >/dev/null; then
  jq -r 'sort | .[]' infra/app-settings.json >"$out/settings-manifest.txt"
  if jq -r '[.. | objects | select(.type? == "Microsoft.App/containerApps") | .properties.template.containers[0].env[].name] | sort | .[]' \
       "$main_json" >"$out/settings-template.txt" 2>"$out/settings.log" \
     && diff -u --label infra/app-settings.json --label "main.bicep (container app env)" \
          "$out/settings-manifest.txt" "$out/settings-template.txt" >>"$out/settings.log"; then
    pass "app settings: the $(wc -l <"$out/settings-manifest.txt") names of infra/app-settings.json = the container app's env in main.json (jq)"
  else
    fail "app settings: infra/app-settings.json differs from the container app's env in main.json" "$out/settings.log"
  fi
else
  if python3 infra/tools/check_deployment.py names infra/app-settings.json "$main_json" >"$out/settings.log" 2>&1; then
    pass "app settings: infra/app-settings.json = the container app's env in main.json (python3)"
  else
    fail "app settings: infra/app-settings.json differs from the container app's env in main.json" "$out/settings.log"
  fi
fi

# `bicep snapshot` evaluates a parameter file against the template offline (placeholder subscription and group); it
# writes next to the parameter file, so it runs on a copy. Every parameter file with a registry, the first also
# without one (a public image).
snap="$out/snapshot"
mkdir -p "$snap"
cp -r infra/main.bicep infra/modules infra/parameters infra/bicepconfig.json "$snap/"
snapshot_check() { # LABEL PARAMFILE REGISTRY
  local label=$1 file=$2 registry=$3 log="$out/snapshot-$1.log" result
  result="$snap/parameters/$(basename "$file" .bicepparam).snapshot.json"
  rm -f "$result"
  if (cd "$snap" && WUERSTCHEN_IMAGE="$check_image" WUERSTCHEN_ACR_NAME="$registry" "$bicep" snapshot "parameters/$(basename "$file")" \
        --subscription-id 00000000-0000-0000-0000-000000000000 --resource-group rg-check --location westus3) >"$log" 2>&1 \
     && bicep_clean "$log" \
     && python3 infra/tools/check_deployment.py snapshot infra/app-settings.json host.json "$result" \
          ${registry:+--expect-acr} >>"$log" 2>&1; then
    pass "deployment snapshot $label: $(grep -c '^  ok' "$log") checks of settings, storage, identity, model mount, probes, scale rules, alerts"
  else
    fail "deployment snapshot $label" "$log"
  fi
}
for f in "${param_files[@]}"; do
  snapshot_check "$(basename "$f" .bicepparam)" "$f" "$check_registry"
done
snapshot_check "$(basename "${param_files[0]}" .bicepparam)-public-image" "${param_files[0]}" ""

# The first step of a first deployment (deployApp=false): everything but the app.
log="$out/snapshot-foundation.log"
foundation="$snap/foundation.snapshot.json"
if (cd "$snap" && cp parameters/dev.bicepparam parameters/foundation.bicepparam \
      && WUERSTCHEN_IMAGE="$check_image" WUERSTCHEN_ACR_NAME="$check_registry" WUERSTCHEN_DEPLOY_APP=false \
         "$bicep" snapshot parameters/foundation.bicepparam \
         --subscription-id 00000000-0000-0000-0000-000000000000 --resource-group rg-check --location westus3 \
      && mv parameters/foundation.snapshot.json "$foundation") >"$log" 2>&1 \
   && bicep_clean "$log" && python3 infra/tools/check_deployment.py foundation "$foundation" >>"$log" 2>&1; then
  pass "deployment snapshot dev-foundation (deployApp=false): $(grep -c '^  ok' "$log") checks: no app, environment, storage and roles"
else
  fail "deployment snapshot dev-foundation (deployApp=false)" "$log"
fi

# --- 4. Deploy script, host.json, base images ---------------------------------------------------------------------------
log="$out/deploy-script.log"
if bash -n infra/deploy.sh infra/docker/build.sh infra/docker/pin-base-images.sh >"$log" 2>&1 \
   && python3 infra/tools/check_deploy_script.py "$root" "$main_json" "$out/bicep/dev.parameters.json" \
        "$snap/parameters/dev.snapshot.json" "$foundation" >>"$log" 2>&1; then
  pass "deploy script (stand-in az): $(grep -c '^  ok' "$log") checks: quota first, foundation then app on a first deployment, override PATCHed after every deployment and read back"
else
  fail "deploy script (infra/deploy.sh against a stand-in az)" "$log"
fi

log="$out/host-json.log"
if python3 infra/tools/check_deployment.py hostjson host.json >"$log" 2>&1; then
  pass "host.json: $(grep -c '^  ok' "$log") checks: finite functionTimeout, connectionName, bounded queue polling"
else
  fail "host.json" "$log"
fi

log="$out/base-images.log"
if python3 infra/tools/check_base_images.py infra/docker/base-images.lock infra/docker/Dockerfile.gpu infra/docker/Dockerfile.cpu >"$log" 2>&1; then
  pass "base images: $(tail -n 1 "$log")"
else
  fail "base images (infra/docker/base-images.lock)" "$log"
fi

# (Worded so it is not mistaken for the test runner's closing "N passed, N failed" line.)
if [ "$failed" -eq 0 ]; then
  echo "infra: all $passed checks passed"
else
  echo "infra: $failed of $((passed + failed)) checks failed"
fi
[ "$failed" -eq 0 ]
