/// A scale rule as Container Apps takes it: a KEDA scaler (custom) or HTTP concurrency.
@export()
type scaleRule = {
  name: string
  custom: { type: string, identity: string?, metadata: { *: string } }?
  http: { metadata: { *: string } }?
}

/// The template.scale of the override PATCH.
@export()
type scaleOverride = {
  minReplicas: int
  maxReplicas: int
  cooldownPeriod: int
  pollingInterval: int
  allowScalingRuleOverride: bool
  rules: scaleRule[]
}

// The Würstchen Functions app: a Container App of kind 'functionapp' (Azure Functions on Container Apps) on the
// serverless GPU profile, running the image built from infra/docker/Dockerfile.gpu. It authenticates to everything
// with one user-assigned identity; its settings are exactly the contract in infra/app-settings.json.

@description('Azure region of the app (the environment\'s region).')
param location string

@description('Name of the container app: 2-32 lowercase letters, digits and hyphens.')
@minLength(2)
@maxLength(32)
param name string

@description('Resource ID of the Container Apps environment.')
param environmentId string

@description('Workload profile (in the environment) the app runs on: the serverless GPU profile.')
param workloadProfileName string

@description('GPU profile type of that workload profile; sets the replica size, which must be the whole GPU node.')
@allowed([
  'Consumption-GPU-NC8as-T4'
  'Consumption-GPU-NC24-A100'
])
param gpuProfile string

@description('Container image, for example myregistry.azurecr.io/wuerstchen-functions:gpu-1a2b3c4.')
param image string

@description('Login server of the registry the image is pulled from with the identity; empty for a public image.')
param registryServer string

@description('Resource ID of the user-assigned identity the app runs as.')
param identityId string

@description('Client ID of that identity (AzureWebJobsStorage__clientId, Wuerstchen__Storage__ManagedIdentityClientId).')
param identityClientId string

@description('Name of the app\'s storage account (AzureWebJobsStorage__accountName).')
param storageAccountName string

@description('Blob service endpoint of that account (Wuerstchen__Storage__ServiceUri).')
param blobEndpoint string

@description('Blob container for latents, images, checkpoints and datasets.')
param dataContainerName string

@description('Queue of bulk generation jobs.')
param jobsQueueName string

@description('Durable Task hub name (WUERSTCHEN_TASK_HUB, read by host.json): 3-45 letters and digits, starting with a letter.')
@minLength(3)
@maxLength(45)
param taskHubName string

@description('Control-queue partitions of the task hub: must equal extensions.durableTask.storageProvider.partitionCount in host.json (infra/check.sh compares them).')
@minValue(1)
@maxValue(16)
param durablePartitionCount int

@description('Name of the Application Insights component (in this resource group) the app reports to.')
param appInsightsName string

@description('Name of the environment storage definition of the model share.')
param modelStorageName string

@description('Path the model share is mounted at in the container (Wuerstchen__Models__Root).')
param modelsMountPath string

@description('Tensor precision of the models on the GPU (Wuerstchen__Models__Precision); empty follows the GPU: float16 on the T4, bfloat16 on the A100.')
@allowed([
  ''
  'bfloat16'
  'float16'
  'float32'
])
param modelPrecision string

@description('The retraining timer\'s schedule (Wuerstchen__Training__Schedule): a 6-field NCRONTAB expression, UTC.')
param retrainingSchedule string

@description('Replicas kept running even when idle. See infra/README.md, "minReplicas: exactly what 0 stops": with 0, nothing but the scale rules of the override wakes the app (no platform HTTP or timer scaling).')
@minValue(0)
@maxValue(10)
param minReplicas int

@description('Upper bound of replicas; each one is a whole GPU and needs GPU quota.')
@minValue(1)
@maxValue(10)
param maxReplicas int

@description('Optional KEDA cron window (5-field crons, UTC) that keeps one replica up around the retraining timer when minReplicas is 0, for example {start: \'55 2 * * *\', end: \'25 3 * * *\'}; empty for none.')
param retrainingWakeWindow { start: string, end: string }?

@description('Most GiB the fine-tuned models materialised on the replica\'s ephemeral disk may take (Wuerstchen__Models__CacheMaxGiB).')
param modelCacheMaxGiB int

@description('Most images in one batched model call (Wuerstchen__Batching__MaxBatchImages); 0 follows the GPU: 4 on the T4, 16 on the A100.')
@minValue(0)
@maxValue(256)
param batchMaxImages int

@description('Milliseconds the first request of a batch waits for others (Wuerstchen__Batching__MaxWait).')
@minValue(0)
@maxValue(10000)
param batchMaxWaitMilliseconds int

@description('Milliseconds requests that shared a model call wait for each other at the next stage (Wuerstchen__Batching__CohortWait).')
@minValue(0)
@maxValue(10000)
param batchCohortWaitMilliseconds int

@description('Stage activities a replica accepts at once (Wuerstchen__Batching__MaxConcurrentStageActivities); 0 is twice the batch images.')
@minValue(0)
@maxValue(1024)
param maxConcurrentStageActivities int

@description('Expose the HTTP API outside the environment (true) or only inside it (false).')
param ingressExternal bool

@description('CIDR ranges allowed to call the API; empty allows any address.')
param ingressAllowedCidrs string[]

@description('Tags applied to every resource.')
param tags { *: string }

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// Port 80 and the base image's default user, as in every Microsoft sample of kind functionapp (infra/README.md, "Port
// 80"): the platform's function listing and keys are only documented for that setup.
var port = 80

// Compute capability 7.5 (T4) has float16 tensor cores but no bfloat16 ones; 8.0 (A100) has both (infra/README.md,
// "GPU profile and precision").
var precision = !empty(modelPrecision) ? modelPrecision : (gpuProfile == 'Consumption-GPU-NC24-A100' ? 'bfloat16' : 'float16')

// The probes' endpoints (src/Wuerstchen.Functions/HealthFunctions.cs, docs/api.md "Health").
var probePaths = {
  startup: '/api/health/startup'
  liveness: '/api/health/live'
  readiness: '/api/health/ready'
}

// Fine-tuned versions materialise into the replica's own ephemeral disk (8 GiB in all for replicas above one vCPU),
// bounded so a version (about 3.7 GiB for a full-size prior variant) plus the host's files fit.
var modelCacheRoot = '/tmp/wuerstchen-models'

// A serverless GPU replica gets the whole node's CPU and memory.
var replicaResources = gpuProfile == 'Consumption-GPU-NC24-A100'
  ? { cpu: json('24.0'), memory: '220Gi' }
  : { cpu: json('8.0'), memory: '56Gi' }

// Batching of concurrent requests (docs/configuration.md, "Wuerstchen:Batching"): the batch follows the card as the app's
// own default does (DeviceProfile: 4 images below 35 GiB, 16 from 70 GiB). The host's activity limit is the stage
// activities plus room for the short bookkeeping activities (plans, bulk records) beside them, which would otherwise
// wait behind stage activities that wait for a batch.
var batchImages = batchMaxImages > 0 ? batchMaxImages : (gpuProfile == 'Consumption-GPU-NC24-A100' ? 16 : 4)
var stageActivities = maxConcurrentStageActivities > 0 ? maxConcurrentStageActivities : 2 * batchImages
var hostActivities = stageActivities + 4
var batchMaxWait = '00:00:${padLeft(batchMaxWaitMilliseconds / 1000, 2, '0')}.${padLeft(batchMaxWaitMilliseconds % 1000, 3, '0')}'
var batchCohortWait = '00:00:${padLeft(batchCohortWaitMilliseconds / 1000, 2, '0')}.${padLeft(batchCohortWaitMilliseconds % 1000, 3, '0')}'

// Durable Task (Azure Storage backend) queue names: the lower-cased hub name, then -workitems or -control-NN (as
// DurableTask.AzureStorage 2.11 names them: GetWorkItemQueueName, GetControlQueueName).
var hub = toLower(taskHubName)

// The scale rules that replace the generated ones. They are NOT part of the app resource below (its create/update): the
// Container Apps docs ("Override scale rules for Functions on Container Apps") apply allowScalingRuleOverride only as
// a PATCH on an existing app, and refuse custom rules without it (FunctionAppCannotSetScaleRules). infra/deploy.sh
// sends this object as that PATCH after every deployment (main.bicep outputs it).
//
// Each replica is a whole GPU that batches concurrent stage activities (up to batchImages images per model call), so
// the work-item rule targets a batch's worth of activities per replica: fewer would spread concurrent requests over
// replicas one each and leave every GPU at batch 1. KEDA's azure-queue scaler counts invisible messages too unless told otherwise
// (queueLengthStrategy, default all): right for the work queues, where an invisible message is work in progress that
// must keep its replica; wrong for the control queues, where Durable keeps future timers as invisible messages.
var azureQueueRule = {
  type: 'azure-queue'
  identity: identityId
}
// Orchestration messages (new instances, activity results, due durable timers) become visible in the control queues;
// these wake an app scaled to zero (activation) with a target too high to add replicas. visibleonly: a durable timer
// waiting for a later time is an invisible message and must not hold a GPU replica until it is due.
var controlQueueRules = [
  for i in range(0, durablePartitionCount): {
    name: 'durable-control-${padLeft(i, 2, '0')}'
    custom: union(azureQueueRule, {
      metadata: {
        accountName: storageAccountName
        queueName: '${hub}-control-${padLeft(i, 2, '0')}'
        queueLength: '1000'
        queueLengthStrategy: 'visibleonly'
      }
    })
  }
]
var overrideRules = concat(
  [
    {
      // Bulk jobs: one replica per waiting or running job, up to maxReplicas.
      name: 'generation-jobs'
      custom: union(azureQueueRule, {
        metadata: { accountName: storageAccountName, queueName: jobsQueueName, queueLength: '1', queueLengthStrategy: 'all' }
      })
    }
    {
      // GPU work already accepted: activities (prior, decoder, VQGAN, training chunks) waiting in or running from the
      // task hub's shared work-item queue. The bulk trigger only starts orchestrations, so this is the real backlog.
      name: 'durable-workitems'
      custom: union(azureQueueRule, {
        metadata: { accountName: storageAccountName, queueName: '${hub}-workitems', queueLength: string(batchImages), queueLengthStrategy: 'all' }
      })
    }
    {
      // HTTP: status polls and new requests are cheap; a high target keeps them from adding GPU replicas while still
      // waking a scaled-to-zero app.
      name: 'http'
      http: {
        metadata: {
          concurrentRequests: '50'
        }
      }
    }
  ],
  controlQueueRules,
  // With the override the platform no longer wakes the app for the retraining timer; this window does, when asked.
  retrainingWakeWindow == null
    ? []
    : [
        {
          name: 'retraining-wake'
          custom: {
            type: 'cron'
            metadata: {
              timezone: 'Etc/UTC'
              start: retrainingWakeWindow!.start
              end: retrainingWakeWindow!.end
              desiredReplicas: '1'
            }
          }
        }
      ]
)

// A GPU replica takes minutes to start (image pull, model load): keep it 15 minutes after the last trigger before
// scaling from 1 to 0 (cooldownPeriod; scale-in from N to minReplicas follows the HPA's own stabilisation instead).
var scaleLimits = {
  minReplicas: minReplicas
  maxReplicas: maxReplicas
  cooldownPeriod: 900
  pollingInterval: 30
}

resource app 'Microsoft.App/containerApps@2026-03-02-preview' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    managedEnvironmentId: environmentId
    workloadProfileName: workloadProfileName
    configuration: {
      // One revision at a time: several active revisions would share one task hub and storage account, which the
      // Functions-on-Container-Apps guidance rules out.
      activeRevisionsMode: 'Single'
      maxInactiveRevisions: 5
      ingress: {
        // Functions on Container Apps needs ingress enabled for its scaling to work.
        external: ingressExternal
        targetPort: port
        transport: 'auto'
        allowInsecure: false
        ipSecurityRestrictions: [
          for (cidr, i) in ingressAllowedCidrs: {
            name: 'allow-${i}'
            action: 'Allow'
            ipAddressRange: cidr
          }
        ]
      }
      registries: empty(registryServer)
        ? []
        : [
            {
              server: registryServer
              identity: identityId
            }
          ]
      secrets: [
        {
          name: 'appinsights-connection-string'
          value: appInsights.properties.ConnectionString
        }
      ]
    }
    template: {
      // Let a running activity finish (and its result be recorded) when a replica is scaled in or replaced.
      terminationGracePeriodSeconds: 300
      containers: [
        {
          name: 'functions'
          image: image
          resources: replicaResources
          // The settings contract (infra/app-settings.json lists exactly these names; infra/check.sh compares them).
          env: [
            {
              name: 'AzureWebJobsStorage__accountName'
              value: storageAccountName
            }
            {
              name: 'AzureWebJobsStorage__credential'
              value: 'managedidentity'
            }
            {
              name: 'AzureWebJobsStorage__clientId'
              value: identityClientId
            }
            {
              name: 'FUNCTIONS_WORKER_RUNTIME'
              value: 'dotnet-isolated'
            }
            {
              name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
              secretRef: 'appinsights-connection-string'
            }
            {
              name: 'WUERSTCHEN_TASK_HUB'
              value: taskHubName
            }
            {
              name: 'Wuerstchen__Storage__Kind'
              value: 'AzureBlob'
            }
            {
              name: 'Wuerstchen__Storage__ServiceUri'
              value: blobEndpoint
            }
            {
              name: 'Wuerstchen__Storage__Container'
              value: dataContainerName
            }
            {
              name: 'Wuerstchen__Storage__ManagedIdentityClientId'
              value: identityClientId
            }
            {
              name: 'Wuerstchen__Models__Root'
              value: modelsMountPath
            }
            {
              name: 'Wuerstchen__Models__Device'
              value: 'cuda'
            }
            {
              name: 'Wuerstchen__Models__Precision'
              value: precision
            }
            {
              name: 'Wuerstchen__Bulk__QueueName'
              value: jobsQueueName
            }
            {
              name: 'Wuerstchen__Training__Schedule'
              value: retrainingSchedule
            }
            {
              name: 'Wuerstchen__Models__CacheRoot'
              value: modelCacheRoot
            }
            {
              name: 'Wuerstchen__Models__CacheMaxGiB'
              value: string(modelCacheMaxGiB)
            }
            {
              name: 'Wuerstchen__Batching__MaxBatchImages'
              value: string(batchImages)
            }
            {
              name: 'Wuerstchen__Batching__MaxWait'
              value: batchMaxWait
            }
            {
              name: 'Wuerstchen__Batching__CohortWait'
              value: batchCohortWait
            }
            {
              name: 'Wuerstchen__Batching__MaxConcurrentStageActivities'
              value: string(stageActivities)
            }
            {
              // host.json's extensions.durableTask.maxConcurrentActivityFunctions, raised for batching.
              name: 'AzureFunctionsJobHost__extensions__durableTask__maxConcurrentActivityFunctions'
              value: string(hostActivities)
            }
          ]
          volumeMounts: [
            {
              volumeName: 'models'
              mountPath: modelsMountPath
            }
          ]
          probes: [
            {
              // Start-up is over once the model preload is (whether it worked or not): up to 30 s + 10 x 60 s for the
              // host, the CUDA initialisation and the load of both pipelines from the share. Liveness waits for it.
              type: 'Startup'
              httpGet: {
                path: probePaths.startup
                port: port
              }
              initialDelaySeconds: 30
              periodSeconds: 60
              timeoutSeconds: 10
              failureThreshold: 10
            }
            {
              // The worker answers; touches neither the GPU nor storage, so a long stage never fails it.
              type: 'Liveness'
              httpGet: {
                path: probePaths.liveness
                port: port
              }
              periodSeconds: 30
              timeoutSeconds: 10
              failureThreshold: 3
            }
            {
              // Store reachable, models mounted, CUDA usable, default models resident: only then does ingress route here.
              type: 'Readiness'
              httpGet: {
                path: probePaths.readiness
                port: port
              }
              periodSeconds: 15
              timeoutSeconds: 10
              failureThreshold: 3
            }
          ]
        }
      ]
      volumes: [
        {
          name: 'models'
          storageType: 'AzureFile'
          storageName: modelStorageName
        }
      ]
      // Created with the platform's trigger-generated rules; infra/deploy.sh then applies scaleOverride (below).
      scale: scaleLimits
    }
  }
}

@description('Name of the container app.')
output name string = app.name

@description('Fully qualified domain name of the app\'s ingress.')
output fqdn string = app.properties.configuration.ingress.fqdn

@description('The template.scale that infra/deploy.sh PATCHes onto the app after every deployment: allowScalingRuleOverride with the rules above.')
output scaleOverride scaleOverride = {
  minReplicas: scaleLimits.minReplicas
  maxReplicas: scaleLimits.maxReplicas
  cooldownPeriod: scaleLimits.cooldownPeriod
  pollingInterval: scaleLimits.pollingInterval
  allowScalingRuleOverride: true
  rules: overrideRules
}

@description('The tensor precision the app runs with.')
output precision string = precision
