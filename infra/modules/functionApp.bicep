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

@description('Tensor precision of the models on the GPU (Wuerstchen__Models__Precision).')
@allowed([
  'bfloat16'
  'float16'
  'float32'
])
param modelPrecision string

@description('The retraining timer\'s schedule (Wuerstchen__Training__Schedule): a 6-field NCRONTAB expression, UTC.')
param retrainingSchedule string

@description('Replicas kept running even when idle. See infra/README.md, "minReplicas": with the Azure Storage Durable backend, 0 lets in-flight orchestrations stall until the next trigger wakes the app.')
@minValue(0)
@maxValue(10)
param minReplicas int

@description('Upper bound of replicas; each one is a whole GPU and needs GPU quota.')
@minValue(1)
@maxValue(10)
param maxReplicas int

@description('Expose the HTTP API outside the environment (true) or only inside it (false).')
param ingressExternal bool

@description('CIDR ranges allowed to call the API; empty allows any address.')
param ingressAllowedCidrs string[]

@description('Tags applied to every resource.')
param tags { *: string }

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// The app listens on 8080, not the Functions image's default 80, because it runs as a non-root user
// (infra/docker/Dockerfile.gpu).
var port = 8080

// A serverless GPU replica gets the whole node's CPU and memory.
var replicaResources = gpuProfile == 'Consumption-GPU-NC24-A100'
  ? { cpu: json('24.0'), memory: '220Gi' }
  : { cpu: json('8.0'), memory: '56Gi' }

// Durable Task (Azure Storage backend) queue names: the lower-cased hub name, then -workitems or -control-NN (as
// DurableTask.AzureStorage 2.11 names them: GetWorkItemQueueName, GetControlQueueName).
var hub = toLower(taskHubName)

var queueRuleBase = {
  accountName: storageAccountName
  identity: identityId
}

// Custom KEDA rules (allowScalingRuleOverride below). Each replica is a whole GPU and host.json runs one activity at a
// time per replica (maxConcurrentActivityFunctions: 1), so the GPU rules target one message per replica.
var fixedRules = [
  {
    // Bulk jobs: one replica per waiting job, up to maxReplicas.
    name: 'generation-jobs'
    azureQueue: union(queueRuleBase, { queueName: jobsQueueName, queueLength: 1 })
  }
  {
    // GPU work already accepted: activities (prior, decoder, VQGAN, training steps) waiting in the task hub's shared
    // work-item queue. The queue trigger above only starts orchestrations, so this is the real backlog signal.
    name: 'durable-workitems'
    azureQueue: union(queueRuleBase, { queueName: '${hub}-workitems', queueLength: 1 })
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
]

// Orchestration messages (new instances, activity results, due durable timers) become visible in the control queues;
// these rules wake an app scaled to zero for them (activation), with a target high enough never to add replicas.
var controlQueueRules = [
  for i in range(0, durablePartitionCount): {
    name: 'durable-control-${padLeft(i, 2, '0')}'
    azureQueue: union(queueRuleBase, { queueName: '${hub}-control-${padLeft(i, 2, '0')}', queueLength: 1000 })
  }
]

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
              value: modelPrecision
            }
            {
              name: 'Wuerstchen__Bulk__QueueName'
              value: jobsQueueName
            }
            {
              name: 'Wuerstchen__Training__Schedule'
              value: retrainingSchedule
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
              // Host start, worker start and the first TorchSharp/CUDA load: allow up to 20 s + 10 x 30 s.
              type: 'Startup'
              httpGet: {
                path: '/api/health'
                port: port
              }
              initialDelaySeconds: 20
              periodSeconds: 30
              timeoutSeconds: 10
              failureThreshold: 10
            }
            {
              type: 'Liveness'
              httpGet: {
                path: '/api/health'
                port: port
              }
              periodSeconds: 30
              timeoutSeconds: 10
              failureThreshold: 3
            }
            {
              type: 'Readiness'
              httpGet: {
                path: '/api/health'
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
      scale: {
        minReplicas: minReplicas
        maxReplicas: maxReplicas
        // A GPU replica takes minutes to start (image pull, model load): keep it 15 minutes after the last trigger.
        cooldownPeriod: 900
        pollingInterval: 30
        // Functions on Container Apps generates KEDA rules from the triggers unless this is set, and then rejects
        // rules given here. The generated rules follow the generation-jobs trigger only (the Durable Azure Storage
        // backend does not drive scaling on Container Apps), so the rules below replace them: they also watch the
        // task hub's work-item and control queues, with the app's identity. The property exists from API version
        // 2026-03-02-preview on; Bicep's type definitions for that version do not list it yet.
        #disable-next-line BCP037 // allowScalingRuleOverride is documented for 2026-03-02-preview but missing from Bicep's types
        allowScalingRuleOverride: true
        rules: concat(fixedRules, controlQueueRules)
      }
    }
  }
}

@description('Name of the container app.')
output name string = app.name

@description('Fully qualified domain name of the app\'s ingress.')
output fqdn string = app.properties.configuration.ingress.fqdn
