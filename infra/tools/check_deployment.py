#!/usr/bin/env python3
"""Checks the Bicep deployment against the app's settings contract and host.json, offline (called by infra/check.sh).

  check_deployment.py names     MANIFEST MAIN_JSON
      infra/app-settings.json must list exactly the env names of the Container App in the compiled main.json.
  check_deployment.py described MAIN_JSON
      Every parameter and output of main.bicep and of each module has a description.
  check_deployment.py snapshot  MANIFEST HOST_JSON SNAPSHOT [--expect-acr]
      The same names in a `bicep snapshot` of a parameter file (values evaluated), and the values and resources the
      app relies on: fixed settings, storage names that exist, the mounted model folder, the three probes, the bounded
      model cache, a precision the GPU runs well, identity-only storage, secure defaults; no custom scale rules in the
      app itself, and the scale-rule override (the functionAppScaleOverride output infra/deploy.sh PATCHes) matching
      the task hub and host.json; the failure-rate and queue-age alerts (docs/operations.md) on Application Insights.
  check_deployment.py foundation SNAPSHOT
      A snapshot with deployApp=false: everything but the app, roles included.
  check_deployment.py hostjson HOST_JSON
      host.json: a finite functionTimeout, connectionName (not the obsolete connectionStringName).

Prints one line per check; exits 1 if any fails. Python 3.8+, standard library only.
"""
import json
import sys

ROLE_ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
ROLE_BLOB_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
ROLE_QUEUE_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
ROLE_TABLE_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"

failures = 0


def report(ok, what, detail=""):
    global failures
    if not ok:
        failures += 1
    print(f"  {'ok  ' if ok else 'FAIL'}  {what}{(': ' + detail) if detail and not ok else ''}")


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_manifest(path):
    names = load(path)
    ok = (isinstance(names, list) and all(isinstance(n, str) and n for n in names)
          and len(set(names)) == len(names))
    report(ok, f"{path} is a JSON array of distinct setting names", "" if ok else "it is not")
    return set(names) if ok else set()


def walk(node):
    """Every JSON object in a compiled template, nested deployments included (resources as array or symbolic map)."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def compare_names(label, expected, actual):
    missing, extra = sorted(expected - actual), sorted(actual - expected)
    parts = ([f"only in the manifest: {missing}"] if missing else []) + ([f"only in the template: {extra}"] if extra else [])
    detail = "; ".join(parts)
    report(not missing and not extra, f"{label}: {len(actual)} env names = infra/app-settings.json", detail)


def check_names(manifest_path, main_json_path):
    manifest = read_manifest(manifest_path)
    apps = [o for o in walk(load(main_json_path)) if o.get("type") == "Microsoft.App/containerApps"]
    report(len(apps) == 1, "main.json has one Microsoft.App/containerApps resource", f"found {len(apps)}")
    if len(apps) != 1:
        return
    containers = apps[0].get("properties", {}).get("template", {}).get("containers", [])
    env = containers[0].get("env", []) if containers and isinstance(containers, list) else None
    report(isinstance(env, list), "the app's env is a literal list (comparable without deploying)")
    if isinstance(env, list):
        compare_names("main.json", manifest, {e.get("name") for e in env})


def check_described(main_json_path):
    """Every template: the compiled main.json and each module nested in it as a deployment's properties.template."""
    templates = [o for o in walk(load(main_json_path))
                 if "deploymentTemplate.json" in str(o.get("$schema", "")) and "resources" in o]
    missing = [f"{kind[:-1]} {key}"
               for t in templates for kind in ("parameters", "outputs")
               for key, decl in (t.get(kind) or {}).items()
               if not (isinstance(decl, dict) and decl.get("metadata", {}).get("description"))]
    report(bool(templates) and not missing,
           f"every parameter and output of the {len(templates)} templates has a @description",
           ", ".join(missing) or "no templates found")


def get(node, *path, default=None):
    """node[path[0]][path[1]]..., or default where a step is missing."""
    for step in path:
        if isinstance(node, dict) and step in node:
            node = node[step]
        elif isinstance(node, list) and isinstance(step, int) and -len(node) <= step < len(node):
            node = node[step]
        else:
            return default
    return node


def check_snapshot(manifest_path, host_json_path, snapshot_path, expect_acr):
    manifest = read_manifest(manifest_path)
    snapshot = load(snapshot_path)
    diagnostics = snapshot.get("diagnostics")
    report(not diagnostics, "snapshot has no diagnostics", json.dumps(diagnostics)[:300])
    by_type = {}
    for r in snapshot.get("predictedResources", []):
        by_type.setdefault(r.get("type"), []).append(r)

    def resources(kind):
        return by_type.get(kind, [])

    check_alerts(resources)

    apps = resources("Microsoft.App/containerApps")
    report(len(apps) == 1, "one container app", f"found {len(apps)}")
    if len(apps) != 1:
        return
    app = apps[0]
    config, template = get(app, "properties", "configuration", default={}), get(app, "properties", "template", default={})
    container = get(template, "containers", 0, default={})

    # The settings: names, sources, fixed values.
    env_list = container.get("env", [])
    env = {e.get("name"): e for e in env_list}
    compare_names("snapshot", manifest, set(env))
    report(len(env) == len(env_list), "no setting is set twice")
    secrets = {x.get("name") for x in config.get("secrets", [])}
    bad_refs = [n for n, e in env.items()
                if ("value" in e) == ("secretRef" in e) or ("secretRef" in e and e["secretRef"] not in secrets)]
    report(not bad_refs, "each setting has a value or a secretRef to a defined secret", str(bad_refs))

    def value(name):
        return env.get(name, {}).get("value")

    fixed = {
        "FUNCTIONS_WORKER_RUNTIME": "dotnet-isolated",
        "AzureWebJobsStorage__credential": "managedidentity",
        "Wuerstchen__Storage__Kind": "AzureBlob",
        "Wuerstchen__Models__Device": "cuda",
    }
    wrong = {k: value(k) for k, v in fixed.items() if value(k) != v}
    report(not wrong, "fixed settings (worker runtime, managed identity, AzureBlob, cuda)", str(wrong))
    precision = value("Wuerstchen__Models__Precision")
    report(precision in ("bfloat16", "float16", "float32"), "Wuerstchen__Models__Precision is a known dtype", str(precision))
    def integer(name):
        text = value(name)
        return int(text) if isinstance(text, str) and text.isdigit() else None

    stage_activities = integer("Wuerstchen__Batching__MaxConcurrentStageActivities")
    host_activities = integer("AzureFunctionsJobHost__extensions__durableTask__maxConcurrentActivityFunctions")
    batch_images = integer("Wuerstchen__Batching__MaxBatchImages")
    report(None not in (stage_activities, host_activities, batch_images) and batch_images >= 1 and host_activities > stage_activities >= 1,
           "batching: the host takes more activities at once than the stage activities a replica batches (docs/configuration.md, \"Wuerstchen:Batching\")",
           f"batch images {batch_images}, stage activities {stage_activities}, host activities {host_activities}")
    client_id = value("AzureWebJobsStorage__clientId")
    report(client_id is not None and client_id == value("Wuerstchen__Storage__ManagedIdentityClientId"),
           "host storage and app blob client use the same identity")

    # Identity.
    report(app.get("kind") == "functionapp", "kind is functionapp", str(app.get("kind")))
    identities = list(get(app, "identity", "userAssignedIdentities", default={}))
    report(get(app, "identity", "type") == "UserAssigned" and len(identities) == 1,
           "the app runs as one user-assigned identity")
    identity_id = identities[0] if identities else "<none>"
    assignments = [r for r in resources("Microsoft.Authorization/roleAssignments")
                   if identity_id in str(get(r, "properties", "principalId", default=""))]

    def role_ids(scope_fragment):
        return {get(r, "properties", "roleDefinitionId", default="").rsplit("/", 1)[-1]
                for r in assignments if scope_fragment in r.get("id", "")}

    # Storage: the account the host uses is identity-only and holds the container and queue the app names.
    accounts = {r["name"]: r for r in resources("Microsoft.Storage/storageAccounts")}
    account_name = value("AzureWebJobsStorage__accountName")
    account = accounts.get(account_name)
    report(account is not None, "AzureWebJobsStorage__accountName names a storage account in the deployment", str(account_name))
    if account:
        report(get(account, "properties", "allowSharedKeyAccess") is False, "that account allows no shared key")
        prefix = f"{account_name}/default/"

        def children(kind):
            return {r["name"][len(prefix):] for r in resources(kind) if r["name"].startswith(prefix)}

        blob_containers = children("Microsoft.Storage/storageAccounts/blobServices/containers")
        queues = children("Microsoft.Storage/storageAccounts/queueServices/queues")
        data = value("Wuerstchen__Storage__Container")
        jobs = value("Wuerstchen__Bulk__QueueName")
        report(data in blob_containers, "Wuerstchen__Storage__Container exists in it", f"{data} not in {sorted(blob_containers)}")
        report(jobs in queues, "Wuerstchen__Bulk__QueueName exists in it", f"{jobs} not in {sorted(queues)}")
        roles = role_ids(f"/storageAccounts/{account_name}/providers/Microsoft.Authorization/")
        needed = {ROLE_BLOB_OWNER, ROLE_QUEUE_CONTRIBUTOR, ROLE_TABLE_CONTRIBUTOR}
        report(roles == needed, "the app's identity holds exactly Blob Data Owner (host storage) and the queue and table data-contributor roles on it",
               f"has {sorted(roles)}")
    insecure = [n for n, r in accounts.items()
                if get(r, "properties", "minimumTlsVersion") != "TLS1_2"
                or get(r, "properties", "supportsHttpsTrafficOnly") is not True
                or get(r, "properties", "allowBlobPublicAccess") is not False]
    report(not insecure, "every storage account: TLS 1.2, HTTPS only, no public blob access", str(insecure))
    if expect_acr:
        report(ROLE_ACR_PULL in role_ids("/registries/"), "the app's identity holds AcrPull on the registry")
        report(bool(config.get("registries")), "the app pulls from the registry with its identity")

    # Models: the folder the app reads is where the share is mounted, read-only.
    mounts = {m.get("mountPath"): m.get("volumeName") for m in container.get("volumeMounts", [])}
    volumes = {v.get("name"): v for v in template.get("volumes", [])}
    root = value("Wuerstchen__Models__Root")
    report(root in mounts and get(volumes, mounts.get(root), "storageType") == "AzureFile",
           "Wuerstchen__Models__Root is the mounted model share", str(root))
    shares = resources("Microsoft.App/managedEnvironments/storages")
    read_only = [r for r in shares if get(r, "properties", "azureFile", "accessMode") == "ReadOnly"]
    report(len(read_only) == len(shares) == 1, "the model share is mounted read-only")

    # Ingress and probes: port 80 as in Microsoft's functionapp samples; three probes, each on its own endpoint.
    ingress = config.get("ingress", {})
    report(ingress.get("allowInsecure") is False, "ingress is HTTPS only")
    report(ingress.get("targetPort") == 80, "ingress targets port 80 (the Functions base image's port)", str(ingress.get("targetPort")))
    probes = {p.get("type"): p for p in container.get("probes", [])}
    paths = {t: get(p, "httpGet", "path") for t, p in probes.items()}
    report(set(probes) == {"Startup", "Liveness", "Readiness"} and len(set(paths.values())) == 3,
           "startup, liveness and readiness probes, each on its own endpoint", str(paths))
    report(paths.get("Liveness") == "/api/health/live" and paths.get("Readiness") == "/api/health/ready"
           and paths.get("Startup") == "/api/health/startup", "the probes point at /api/health/live, /ready and /startup", str(paths))
    report(all(get(p, "httpGet", "port") == ingress.get("targetPort") for p in probes.values()), "every probe uses the ingress port")
    limits_ok = all(1 <= p.get("failureThreshold", 3) <= 10 and 1 <= p.get("periodSeconds", 10) <= 240
                    and 1 <= p.get("initialDelaySeconds", 1) <= 60 and 1 <= p.get("timeoutSeconds", 1) <= 240 for p in probes.values())
    report(limits_ok, "probe settings within Container Apps' limits (failureThreshold 1-10, periodSeconds 1-240, initialDelaySeconds 1-60)")
    startup = probes.get("Startup", {})
    budget = startup.get("initialDelaySeconds", 0) + startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
    report(budget >= 600, f"the startup probe allows {budget} s for the model load (at least 600)")

    # The fine-tuned model cache: on the replica's own disk, bounded below its 8 GiB of ephemeral storage.
    cache_root, cache_max = value("Wuerstchen__Models__CacheRoot"), value("Wuerstchen__Models__CacheMaxGiB")
    report(cache_root is not None and not str(cache_root).startswith(str(root)), "the model cache is a writable folder outside the read-only model mount",
           str(cache_root))
    try:
        cache_gib = float(cache_max)
    except (TypeError, ValueError):
        cache_gib = -1
    report(3.7 <= cache_gib <= 6, "the model cache is bounded: room for one full-size prior variant (3.7 GiB), within the replica's 8 GiB disk",
           str(cache_max))

    # Precision the GPU runs well: no bfloat16 on the T4 (compute capability 7.5 has no bfloat16 tensor cores).
    profiles = {p.get("name"): p.get("workloadProfileType") for e in resources("Microsoft.App/managedEnvironments")
                for p in get(e, "properties", "workloadProfiles", default=[])}
    gpu = profiles.get(get(app, "properties", "workloadProfileName"))
    report(not (gpu == "Consumption-GPU-NC8as-T4" and precision == "bfloat16"),
           f"precision {precision} suits the {gpu} profile (T4: float16, A100: bfloat16)")

    # Scale: the app itself carries no custom rules (it is created with the generated ones) ...
    durable = get(load(host_json_path), "extensions", "durableTask", default={})
    report(durable.get("hubName") == "%WUERSTCHEN_TASK_HUB%", "host.json takes the task hub from WUERSTCHEN_TASK_HUB",
           str(durable.get("hubName")))
    partitions = get(durable, "storageProvider", "partitionCount", default=4)
    scale = template.get("scale", {})
    report(not scale.get("rules") and "allowScalingRuleOverride" not in scale,
           "no custom scale rules and no allowScalingRuleOverride in the app's create/update request", json.dumps(scale)[:300])
    report(scale.get("minReplicas", 0) <= scale.get("maxReplicas", 10), "minReplicas <= maxReplicas",
           f"{scale.get('minReplicas')} > {scale.get('maxReplicas')}")

    # ... and the override infra/deploy.sh PATCHes afterwards watches the task hub and the jobs queue.
    override = get(snapshot, "outputs", "functionAppScaleOverride", default={})
    if isinstance(override, dict) and "value" in override:
        override = override["value"]
    report(isinstance(override, dict) and override.get("allowScalingRuleOverride") is True,
           "the scale-rule override (output functionAppScaleOverride) sets allowScalingRuleOverride", str(override)[:200])
    if not isinstance(override, dict):
        return
    report(all(override.get(k) == scale.get(k) for k in ("minReplicas", "maxReplicas", "cooldownPeriod", "pollingInterval")),
           "the override keeps the app's replica limits and cooldown")
    rules = override.get("rules") or []
    queue_rules = {get(r, "custom", "metadata", "queueName"): r["custom"] for r in rules if get(r, "custom", "type") == "azure-queue"}
    hub = (value("WUERSTCHEN_TASK_HUB") or "").lower()
    jobs, work_items = value("Wuerstchen__Bulk__QueueName"), f"{hub}-workitems"
    controls = {f"{hub}-control-{i:02d}" for i in range(partitions)}
    report(set(queue_rules) == {jobs, work_items} | controls,
           f"override queue rules: the jobs queue, {work_items} and {partitions} control queues (host.json partitionCount)",
           f"rules {sorted(queue_rules)}")
    report(all(get(q, "metadata", "accountName") == account_name and q.get("identity") == identity_id for q in queue_rules.values()),
           "override queue rules read the app's storage account with the app's identity")
    strategies = {n: get(q, "metadata", "queueLengthStrategy") for n, q in queue_rules.items()}
    report(all(strategies.get(n) == "visibleonly" for n in controls) and strategies.get(jobs) == "all" and strategies.get(work_items) == "all",
           "control queues count visible messages only (future durable timers hold no GPU); work queues count work in progress too",
           str(strategies))
    report(any("http" in r for r in rules), "an HTTP scale rule in the override")


def check_alerts(resources):
    """The alerts docs/operations.md describes: enabled log search rules on the app's Application Insights component."""
    components = [c.get("name") for c in resources("Microsoft.Insights/components")]
    rules = resources("Microsoft.Insights/scheduledQueryRules")

    def queries(rule):
        return " ".join(str(c.get("query", "")) for c in get(rule, "properties", "criteria", "allOf", default=[]))

    for label, fragments in (("stage failure rate", ("StageC", "StageB", "StageA", "success == false")),
                             ("queue age", ("wuerstchen.queue.wait",))):
        found = [r for r in rules if all(f in queries(r) for f in fragments)]
        report(len(found) == 1, f"alert: one {label} rule (docs/operations.md)", f"found {len(found)} of {len(rules)} rules")
        for r in found:
            props = r.get("properties", {})
            scopes = props.get("scopes", [])
            report(props.get("enabled") is True and len(scopes) == 1 and any(str(scopes[0]).endswith(f"/components/{c}") for c in components),
                   f"alert: the {label} rule is enabled and watches the app's Application Insights", str(scopes)[:200])
            criteria = get(props, "criteria", "allOf", 0, default={})
            report(criteria.get("operator") == "GreaterThan" and isinstance(criteria.get("threshold"), (int, float)) and criteria.get("metricMeasureColumn"),
                   f"alert: the {label} rule compares a measured column with a threshold", json.dumps(criteria)[:200])


def check_foundation(snapshot_path):
    snapshot = load(snapshot_path)
    kinds = {r.get("type") for r in snapshot.get("predictedResources", [])}
    report(not snapshot.get("diagnostics"), "snapshot has no diagnostics")
    report("Microsoft.App/containerApps" not in kinds, "deployApp=false deploys no container app")
    report({"Microsoft.App/managedEnvironments", "Microsoft.Authorization/roleAssignments", "Microsoft.Storage/storageAccounts"} <= kinds,
           "deployApp=false deploys the environment, the storage and the role assignments")
    report(get(snapshot, "outputs", "environmentName") not in (None, ""), "deployApp=false outputs the environment name")


def check_host_json(host_json_path):
    host = load(host_json_path)
    timeout = host.get("functionTimeout")
    parts = str(timeout).split(":")
    finite = len(parts) == 3 and all(p.isdigit() for p in parts) and str(timeout) != "00:00:00"
    report(finite, "host.json functionTimeout is a finite hh:mm:ss (infra/README.md, \"functionTimeout\")", str(timeout))
    provider = get(host, "extensions", "durableTask", "storageProvider", default={})
    report("connectionName" in provider and "connectionStringName" not in provider,
           "host.json names the Durable storage connection with connectionName, not the obsolete connectionStringName")
    report(provider.get("maxQueuePollingInterval") is not None, "host.json bounds the Durable queue polling interval (stage-to-stage latency)")


def main(argv):
    if len(argv) >= 3 and argv[0] == "names":
        check_names(argv[1], argv[2])
    elif len(argv) >= 2 and argv[0] == "described":
        check_described(argv[1])
    elif len(argv) >= 2 and argv[0] == "foundation":
        check_foundation(argv[1])
    elif len(argv) >= 2 and argv[0] == "hostjson":
        check_host_json(argv[1])
    elif len(argv) >= 4 and argv[0] == "snapshot":
        check_snapshot(argv[1], argv[2], argv[3], "--expect-acr" in argv[4:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
