#!/usr/bin/env bash
# Deploys Würstchen Functions into a resource group, the same way every time (infra/README.md, "Deploy"):
#
#   WUERSTCHEN_IMAGE=<registry>.azurecr.io/wuerstchen-functions@sha256:<digest> WUERSTCHEN_ACR_NAME=<registry> \
#     infra/deploy.sh <resource-group> infra/parameters/<env>.bicepparam
#
#   1. GPU quota: fails before anything is created when the region's or the environment's serverless GPU quota cannot
#      take a rollout (the old revision keeps its replicas until the new one is ready: up to 2 x maxReplicas GPUs).
#   2. First deployment only (no app yet): deploys everything but the app (deployApp=false), checks the new
#      environment's GPU quota, and waits WUERSTCHEN_ROLE_WAIT_SECONDS (300) so the identity's storage and AcrPull role
#      assignments have propagated before the first revision pulls the image and opens the task hub.
#   3. The Bicep deployment (creates or updates the app with the platform's trigger-generated scale rules).
#   4. The scale-rule override: a PATCH of template.scale (allowScalingRuleOverride and the rules main.bicep outputs),
#      as the Container Apps docs apply it, on every run (a PUT from step 3 resets it); then reads it back.
#
# Needs the Azure CLI (logged in, Bicep installed: `az bicep install`) and python3. Options:
#   --name NAME        deployment name (default wuerstchen)
#   --skip-quota       do not check GPU quota (for example when the CLI lacks `az containerapp list-usages`)
set -euo pipefail

api_version=2026-03-02-preview
deployment=wuerstchen
check_quota=1
role_wait=${WUERSTCHEN_ROLE_WAIT_SECONDS:-300}

usage() { sed -n '2,/^set -e/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 2; }
fail() { echo "deploy: error: $*" >&2; exit 1; }
note() { echo "deploy: $*"; }

positional=()
while [ $# -gt 0 ]; do
  case "$1" in
    --name) deployment=${2:?--name needs a value}; shift 2 ;;
    --skip-quota) check_quota=0; shift ;;
    -h|--help) usage ;;
    -*) fail "unknown option $1 (see --help)" ;;
    *) positional+=("$1"); shift ;;
  esac
done
[ ${#positional[@]} -eq 2 ] || usage
rg=${positional[0]}
params=${positional[1]}
here=$(cd "$(dirname "$0")" && pwd)
[ -f "$params" ] || fail "no parameter file $params"
for tool in az python3; do
  command -v "$tool" >/dev/null || fail "$tool is not on PATH"
done
[ -n "${WUERSTCHEN_IMAGE:-}" ] || fail "WUERSTCHEN_IMAGE is not set: the image to run, for example <registry>.azurecr.io/wuerstchen-functions@sha256:<digest> (infra/README.md, \"Build and push\")"
image_name=${WUERSTCHEN_IMAGE##*/}
case "$image_name" in
  *@sha256:*) ;;
  *:latest|*:) note "WUERSTCHEN_IMAGE uses the tag 'latest' or none; use the digest or a commit tag, or a changed image under the same name does not roll out" ;;
  *:*) ;;
  *) note "WUERSTCHEN_IMAGE has no tag or digest; use the digest or a commit tag, or a changed image under the same name does not roll out" ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# json FILE EXPR: prints a value of a JSON document (EXPR is Python on `d`); empty when a key is missing.
json() {
  python3 - "$1" "$2" <<'PY'
import json, sys
try:
    d = json.load(open(sys.argv[1], encoding="utf-8"))
    value = eval(sys.argv[2], {"d": d})
except (KeyError, IndexError, TypeError, ValueError):
    value = None
if value is None:
    print("")
elif isinstance(value, (dict, list)):
    print(json.dumps(value))
else:
    print(value)
PY
}

az account show -o json >"$work/account.json" 2>"$work/err" || fail "the Azure CLI is not logged in (az login): $(cat "$work/err")"
subscription=$(json "$work/account.json" 'd["id"]')
az group show -n "$rg" -o json >"$work/group.json" 2>"$work/err" \
  || fail "resource group $rg does not exist or is not readable; create it in a region with serverless GPUs: az group create -n $rg -l westus3"

# The parameters this script needs before deploying: the file's values over main.bicep's defaults.
az bicep build --file "$here/main.bicep" --outfile "$work/main.json" >/dev/null
az bicep build-params --file "$params" --outfile "$work/parameters.json" >/dev/null
param() { # NAME: the parameter file's value, else main.bicep's default
  local value
  value=$(json "$work/parameters.json" "d['parameters']['$1']['value']")
  [ -n "$value" ] || value=$(json "$work/main.json" "d['parameters']['$1']['defaultValue']")
  echo "$value"
}
gpu_profile=$(param gpuProfile)
max_replicas=$(param maxReplicas)
location=$(json "$work/parameters.json" "d['parameters']['location']['value']")
[ -n "$location" ] || location=$(json "$work/group.json" 'd["location"]')
case "$gpu_profile" in
  Consumption-GPU-NC8as-T4) gpu_kind=T4 ;;
  Consumption-GPU-NC24-A100) gpu_kind=A100 ;;
  *) fail "unknown gpuProfile '$gpu_profile'" ;;
esac
needed=$((2 * max_replicas))
note "resource group $rg ($location), $gpu_profile, up to $max_replicas replicas: a rollout needs up to $needed $gpu_kind GPUs of quota"

# quota_check SCOPE USAGES.json APP_REPLICAS: fails when the GPU quota item is there and cannot take a rollout.
quota_check() {
  local scope=$1 file=$2 in_use_by_app=$3 verdict
  verdict=$(python3 - "$file" "$gpu_kind" "$max_replicas" "$in_use_by_app" <<'PY'
import json, sys
usages = json.load(open(sys.argv[1], encoding="utf-8"))
kind, max_replicas, app_replicas = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
items = usages.get("value", usages) if isinstance(usages, dict) else usages
key = "t4gpus" if kind == "T4" else "nca100gpus"
def name(item):
    n = item.get("name", {})
    return (n.get("value") or n.get("localizedValue") or "") if isinstance(n, dict) else str(n)
matches = [i for i in items if "consumption" in name(i).lower().replace(" ", "") and name(i).lower().replace(" ", "").endswith(key)]
if not matches:
    print("unknown")
    sys.exit()
item = matches[0]
limit, current = int(item.get("limit", 0)), int(item.get("currentValue", 0))
others = max(current - app_replicas, 0)   # GPUs other apps hold now
short = []
if limit < 2 * max_replicas + others:
    short.append(f"{name(item)}: limit {limit}, {others} in use by other apps; a rollout of {max_replicas} replicas needs {2 * max_replicas} more")
print("short " + "; ".join(short) if short else f"ok {name(item)}: limit {limit}, {current} in use")
PY
  )
  case "$verdict" in
    ok*) note "GPU quota ($scope) ${verdict#ok }" ;;
    short*) fail "not enough serverless $gpu_kind GPU quota ($scope): ${verdict#short }. Lower maxReplicas, or request more quota (infra/README.md, \"GPU quota\"), then run this again." ;;
    *) note "GPU quota ($scope): the CLI lists no $gpu_kind GPU quota item here; check it in the portal (Quotas, Azure Container Apps)" ;;
  esac
}

# Is there an app already? A previous deployment's outputs name it.
app=""
if az deployment group show -g "$rg" -n "$deployment" -o json >"$work/previous.json" 2>/dev/null; then
  app=$(json "$work/previous.json" "d['properties']['outputs']['functionAppName']['value']")
  environment=$(json "$work/previous.json" "d['properties']['outputs']['environmentName']['value']")
fi
app_replicas=0
if [ -n "$app" ] && az containerapp show -g "$rg" -n "$app" -o json >"$work/app.json" 2>/dev/null; then
  first=0
  az containerapp replica list -g "$rg" -n "$app" -o json >"$work/replicas.json" 2>/dev/null || echo '[]' >"$work/replicas.json"
  app_replicas=$(json "$work/replicas.json" 'len(d)')
  note "updating $app ($app_replicas replicas running)"
else
  first=1
  note "first deployment: the app does not exist yet"
fi

# 1. Quota before anything is created or rolled out.
if [ "$check_quota" = 1 ]; then
  if az containerapp list-usages --location "$location" -o json >"$work/usages-region.json" 2>"$work/err"; then
    quota_check "subscription, $location" "$work/usages-region.json" "$app_replicas"
  else
    note "GPU quota (subscription): az containerapp list-usages failed ($(head -c 200 "$work/err")); skipping this check"
  fi
  if [ "$first" = 0 ] && [ -n "${environment:-}" ]; then
    az containerapp env list-usages -g "$rg" -n "$environment" -o json >"$work/usages-env.json" 2>/dev/null \
      && quota_check "environment $environment" "$work/usages-env.json" "$app_replicas"
  fi
fi

# 2. First deployment: everything but the app, then let the role assignments propagate.
if [ "$first" = 1 ]; then
  note "step 1/3: identity, storage, roles, registry access and environment (deployApp=false)"
  WUERSTCHEN_DEPLOY_APP=false az deployment group create -g "$rg" -n "$deployment-foundation" --parameters "$params" \
    -o json >"$work/foundation.json"
  environment=$(json "$work/foundation.json" "d['properties']['outputs']['environmentName']['value']")
  if [ "$check_quota" = 1 ] && az containerapp env list-usages -g "$rg" -n "$environment" -o json >"$work/usages-env.json" 2>/dev/null; then
    quota_check "environment $environment" "$work/usages-env.json" 0
  fi
  note "waiting ${role_wait} s for the new role assignments to propagate in Entra ID (WUERSTCHEN_ROLE_WAIT_SECONDS)"
  sleep "$role_wait"
fi

# 3. The deployment itself.
note "step $([ "$first" = 1 ] && echo 2/3 || echo 1/2): deployment $deployment (the app with its generated scale rules)"
WUERSTCHEN_DEPLOY_APP=true az deployment group create -g "$rg" -n "$deployment" --parameters "$params" -o json >"$work/deployment.json"
app=$(json "$work/deployment.json" "d['properties']['outputs']['functionAppName']['value']")
json "$work/deployment.json" "d['properties']['outputs']['functionAppScaleOverride']['value']" >"$work/scale.json"
[ -s "$work/scale.json" ] && [ "$(cat "$work/scale.json")" != "" ] || fail "the deployment has no functionAppScaleOverride output"

# 4. The scale-rule override, as a PATCH on the existing app.
note "step $([ "$first" = 1 ] && echo 3/3 || echo 2/2): scale-rule override on $app (PATCH template.scale, api-version $api_version)"
python3 - "$work/scale.json" >"$work/patch.json" <<'PY'
import json, sys
scale = json.load(open(sys.argv[1], encoding="utf-8"))
assert scale.get("allowScalingRuleOverride") is True and scale.get("rules"), "the override has no rules"
print(json.dumps({"properties": {"template": {"scale": scale}}}))
PY
app_id="/subscriptions/$subscription/resourceGroups/$rg/providers/Microsoft.App/containerApps/$app"
az rest --method PATCH --url "$app_id?api-version=$api_version" --headers "Content-Type=application/json" \
  --body "@$work/patch.json" -o json >/dev/null
az rest --method GET --url "$app_id?api-version=$api_version" -o json >"$work/applied.json"
python3 - "$work/scale.json" "$work/applied.json" <<'PY' || fail "the scale-rule override did not stick on $app: see above; run this script again"
import json, sys
wanted = json.load(open(sys.argv[1], encoding="utf-8"))
scale = json.load(open(sys.argv[2], encoding="utf-8"))["properties"]["template"]["scale"]
got = {r["name"] for r in scale.get("rules") or []}
missing = sorted({r["name"] for r in wanted["rules"]} - got)
if scale.get("allowScalingRuleOverride") is not True or missing:
    print(f"allowScalingRuleOverride={scale.get('allowScalingRuleOverride')}, rules missing: {missing}", file=sys.stderr)
    sys.exit(1)
print(f"deploy: override in place: {len(got)} rules ({', '.join(sorted(got))})")
PY

api=$(json "$work/deployment.json" "d['properties']['outputs']['apiBaseUrl']['value']")
note "done. The deployment made two revisions (the Bicep update, then the override); the older is deactivated once the newer is ready."
note "next: the first-deployment checklist in infra/README.md (health, CUDA driver, keys, smoke test). API: $api"
note "  keys: az containerapp function keys list -g $rg -n $app --key-type hostKey   (send one as x-functions-key)"
