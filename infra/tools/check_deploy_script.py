#!/usr/bin/env python3
"""Runs infra/deploy.sh against a stand-in `az` (called by infra/check.sh; nothing reaches Azure).

  check_deploy_script.py REPO_ROOT MAIN_JSON PARAMS_JSON FULL_SNAPSHOT FOUNDATION_SNAPSHOT

The stand-in answers from the compiled templates and the offline snapshots of dev.bicepparam (deployApp true and
false): the outputs a real deployment would return, the quota usages a scenario asks for. Each scenario checks the
commands the script ran, in order:
  first     a first deployment: quota checked, everything but the app first (deployApp=false), the environment's
            quota, then the full deployment, then the PATCH of the scale-rule override, read back;
  update    the app exists: no foundation step, the override PATCHed again after the deployment (a PUT resets it);
  quota     too little GPU quota: the script fails, naming the quota, before any deployment;
  lost      the override does not stick: the script fails saying so.
Prints one line per check; exits 1 if any fails. Python 3.8+, standard library only.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

failures = 0

FAKE_AZ = r'''#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
state = os.environ["FAKE_AZ_STATE"]
scenario = os.environ["FAKE_AZ_SCENARIO"]
with open(os.path.join(state, "calls.jsonl"), "a") as log:
    log.write(json.dumps({"args": args, "deployApp": os.environ.get("WUERSTCHEN_DEPLOY_APP")}) + "\n")

def opt(name):
    return args[args.index(name) + 1] if name in args else None

def out(value):
    print(json.dumps(value))
    sys.exit(0)

def outputs(path):
    snapshot = json.load(open(path))
    return {"properties": {"outputs": {k: {"type": "Object", "value": v} for k, v in snapshot["outputs"].items()}}}

def usages(name, current, limit):
    return {"value": [{"name": {"value": name, "localizedValue": name}, "currentValue": current, "limit": limit, "unit": "Count"}]}

exists = scenario in ("update", "lost")
words = [a for a in args if not a.startswith("-")]
if words[:2] == ["account", "show"]:
    out({"id": "00000000-0000-0000-0000-000000000000"})
if words[:2] == ["group", "show"]:
    out({"name": opt("-n"), "location": "westus3"})
if words[:2] == ["bicep", "build"]:
    import shutil; shutil.copy(os.environ["FAKE_AZ_MAIN_JSON"], opt("--outfile")); sys.exit(0)
if words[:2] == ["bicep", "build-params"]:
    import shutil; shutil.copy(os.environ["FAKE_AZ_PARAMS_JSON"], opt("--outfile")); sys.exit(0)
if words[:3] == ["deployment", "group", "show"]:
    if exists:
        out(outputs(os.environ["FAKE_AZ_FULL"]))
    print("ERROR: (DeploymentNotFound)", file=sys.stderr); sys.exit(3)
if words[:3] == ["deployment", "group", "create"]:
    out(outputs(os.environ["FAKE_AZ_FOUNDATION" if os.environ.get("WUERSTCHEN_DEPLOY_APP") == "false" else "FAKE_AZ_FULL"]))
if words[:2] == ["containerapp", "show"]:
    if exists:
        out({"name": opt("-n")})
    print("ERROR: (ResourceNotFound)", file=sys.stderr); sys.exit(3)
if words[:3] == ["containerapp", "replica", "list"]:
    out([{"name": "replica-1"}])
if words[:2] == ["containerapp", "list-usages"]:
    out(usages("SubscriptionConsumptionT4Gpus", 1 if exists else 0, 1 if scenario == "quota" else 4))
if words[:3] == ["containerapp", "env", "list-usages"]:
    out(usages("ManagedEnvironmentConsumptionT4Gpus", 1 if exists else 0, 4))
if words[:1] == ["rest"]:
    stored = os.path.join(state, "app.json")
    if opt("--method") == "PATCH":
        body = json.load(open(opt("--body")[1:]))
        if scenario != "lost":
            json.dump(body, open(stored, "w"))
        out({})
    applied = json.load(open(stored)) if os.path.exists(stored) else {"properties": {"template": {"scale": {"minReplicas": 1}}}}
    out(applied)
print("fake az: unexpected command " + " ".join(args), file=sys.stderr)
sys.exit(64)
'''


def report(ok, what, detail=""):
    global failures
    if not ok:
        failures += 1
    print(f"  {'ok  ' if ok else 'FAIL'}  {what}{(': ' + detail) if detail and not ok else ''}")


WORK = tempfile.mkdtemp(prefix="check-deploy-script-")


def run(scenario, root, env_base):
    state = tempfile.mkdtemp(prefix=f"{scenario}-", dir=WORK)
    bin_dir = os.path.join(state, "bin")
    os.makedirs(bin_dir)
    az = os.path.join(bin_dir, "az")
    with open(az, "w") as f:
        f.write(FAKE_AZ)
    os.chmod(az, 0o755)
    env = dict(env_base, PATH=bin_dir + os.pathsep + os.environ["PATH"], FAKE_AZ_STATE=state, FAKE_AZ_SCENARIO=scenario,
               WUERSTCHEN_IMAGE="example.azurecr.io/wuerstchen-functions@sha256:" + "0" * 64, WUERSTCHEN_ROLE_WAIT_SECONDS="0")
    env.pop("WUERSTCHEN_DEPLOY_APP", None)
    result = subprocess.run([os.path.join(root, "infra", "deploy.sh"), "rg-check", os.path.join(root, "infra", "parameters", "dev.bicepparam")],
                            env=env, capture_output=True, text=True, timeout=120)
    calls = []
    log = os.path.join(state, "calls.jsonl")
    if os.path.exists(log):
        calls = [json.loads(line) for line in open(log)]
    applied = os.path.join(state, "app.json")
    body = json.load(open(applied)) if os.path.exists(applied) else None
    return result, calls, body


def verb(call):
    return " ".join(a for a in call["args"] if not a.startswith("-"))[:40]


def index(calls, predicate):
    return next((i for i, c in enumerate(calls) if predicate(c)), -1)


def main(argv):
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    root, main_json, params_json, full, foundation = argv
    env = dict(os.environ, FAKE_AZ_MAIN_JSON=main_json, FAKE_AZ_PARAMS_JSON=params_json, FAKE_AZ_FULL=full, FAKE_AZ_FOUNDATION=foundation)
    override = json.load(open(full))["outputs"]["functionAppScaleOverride"]
    expected_body = {"properties": {"template": {"scale": override}}}

    def creates(calls):
        return [c for c in calls if verb(c).startswith("deployment group create")]

    def patches(calls):
        return [c for c in calls if c["args"][:1] == ["rest"] and "PATCH" in c["args"]]

    # first deployment
    result, calls, body = run("first", root, env)
    report(result.returncode == 0, "first deployment: the script succeeds", result.stderr[-400:])
    made = creates(calls)
    report([c["deployApp"] for c in made] == ["false", "true"],
           "first deployment: everything but the app (deployApp=false), then the full deployment", str([c["deployApp"] for c in made]))
    quota_first = index(calls, lambda c: verb(c).startswith("containerapp list-usages"))
    env_quota = index(calls, lambda c: verb(c).startswith("containerapp env list-usages"))
    first_create = index(calls, lambda c: verb(c).startswith("deployment group create"))
    report(0 <= quota_first < first_create, "first deployment: the region's GPU quota is checked before anything is deployed")
    report(first_create < env_quota < index(calls, lambda c: c is made[-1]) if len(made) == 2 else False,
           "first deployment: the new environment's GPU quota is checked before the app is created")
    sent = patches(calls)
    report(len(sent) == 1 and calls.index(sent[0]) > calls.index(made[-1]), "the override is PATCHed after the deployment, once")
    if sent:
        url = sent[0]["args"][sent[0]["args"].index("--url") + 1]
        report("/providers/Microsoft.App/containerApps/ca-wurst-dev-func?api-version=2026-03-02-preview" in url,
               "the PATCH goes to the app with api-version 2026-03-02-preview", url)
    report(any(c["args"][:1] == ["rest"] and "GET" in c["args"] for c in calls[calls.index(sent[0]) + 1:]) if sent else False,
           "the override is read back after the PATCH")
    report(body == expected_body, "the PATCH body is the template's functionAppScaleOverride as properties.template.scale",
           json.dumps(body)[:200])

    # update: the app exists
    result, calls, body = run("update", root, env)
    report(result.returncode == 0, "update: the script succeeds", result.stderr[-400:])
    made = creates(calls)
    report([c["deployApp"] for c in made] == ["true"], "update: no foundation step, one deployment", str([c["deployApp"] for c in made]))
    sent = patches(calls)
    report(bool(made) and len(sent) == 1 and calls.index(sent[0]) > calls.index(made[-1]),
           "update: the override is PATCHed again after the deployment (a PUT resets it)")
    report(body == expected_body and "override in place" in result.stdout, "update: the same override, reported in place", result.stdout[-300:])

    # quota short
    result, calls, _ = run("quota", root, env)
    report(result.returncode != 0 and "quota" in result.stderr and not creates(calls),
           "too little GPU quota: the script fails naming the quota, before any deployment", result.stderr[-300:])

    # the override does not stick
    result, calls, _ = run("lost", root, env)
    report(result.returncode != 0 and "did not stick" in result.stderr, "an override that does not stick fails the script", result.stderr[-300:])
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
