// Würstchen Functions on Azure Container Apps with a serverless GPU: everything one environment (dev, prod) needs in
// one resource group. infra/README.md has the picture, the build/deploy/upload/smoke-test steps, and the cost and
// minReplicas notes.
//
// Deploy with infra/deploy.sh, never with `az deployment group create` alone: the script also applies the scale-rule
// override (a PATCH the Container Apps docs require after the app exists), checks GPU quota first, and orders the
// first deployment so the identity's roles exist before the first revision starts.
targetScope = 'resourceGroup'

import { scaleOverride } from 'modules/functionApp.bicep'

@description('Azure region for every resource. Serverless GPUs exist in a few regions only (for example westus3, australiaeast, swedencentral); check the current list and your GPU quota there.')
param location string = resourceGroup().location

@description('Short name of the workload, used in resource names: 2-10 lowercase letters or digits.')
@minLength(2)
@maxLength(10)
param baseName string = 'wurst'

@description('Environment name used in resource names and tags, for example dev or prod: 2-8 lowercase letters or digits.')
@minLength(2)
@maxLength(8)
param environmentName string

@description('Container image of the app, built from infra/docker/Dockerfile.gpu, for example myregistry.azurecr.io/wuerstchen-functions:gpu-1a2b3c4. Use an immutable tag or a digest.')
param image string

@description('Name of an existing Azure Container Registry the image is pulled from with the app\'s identity (AcrPull is granted on it); empty when the image is public.')
param containerRegistryName string = ''

@description('Resource group of that registry; defaults to this deployment\'s resource group.')
param containerRegistryResourceGroupName string = resourceGroup().name

@description('Serverless GPU workload profile: Consumption-GPU-NC8as-T4 (NVIDIA T4 16 GB, 8 vCPU, 56 GiB) or Consumption-GPU-NC24-A100 (NVIDIA A100 80 GB, 24 vCPU, 220 GiB).')
@allowed([
  'Consumption-GPU-NC8as-T4'
  'Consumption-GPU-NC24-A100'
])
param gpuProfile string = 'Consumption-GPU-NC8as-T4'

@description('Replicas kept running when idle. 1 (default) keeps Durable orchestrations, the retraining timer and cold starts out of the picture. 0 stops the idle GPU cost; then only the override\'s scale rules wake the app (infra/README.md, "minReplicas: exactly what 0 stops").')
@minValue(0)
@maxValue(10)
param minReplicas int = 1

@description('Most replicas; each one holds a whole GPU and counts against the subscription\'s GPU quota.')
@minValue(1)
@maxValue(10)
param maxReplicas int = 1

@description('Tensor precision on the GPU (Wuerstchen__Models__Precision); empty (default) follows the GPU: float16 on the T4 (compute capability 7.5 has float16 tensor cores but no bfloat16 ones), bfloat16 on the A100 (infra/README.md, "GPU profile and precision").')
@allowed([
  ''
  'bfloat16'
  'float16'
  'float32'
])
param modelPrecision string = ''

@description('Optional cron window (5-field crons, UTC) in which one replica is kept up around the retraining timer, for minReplicas 0, for example {start: \'55 2 * * *\', end: \'25 3 * * *\'}.')
param retrainingWakeWindow { start: string, end: string }?

@description('Most GiB the fine-tuned models materialised on a replica\'s ephemeral disk may take (8 GiB of ephemeral storage per replica in all; one full-size prior variant needs about 3.7 GiB).')
@minValue(4)
@maxValue(6)
param modelCacheMaxGiB int = 4

@description('Most images in one batched model call of concurrent requests (Wuerstchen__Batching__MaxBatchImages); 0 (default) follows the GPU: 4 on the T4, 16 on the A100 (docs/configuration.md, "Wuerstchen:Batching"). 1 turns batching off.')
@minValue(0)
@maxValue(256)
param batchMaxImages int = 0

@description('Milliseconds the first request of a batch waits for others to join (Wuerstchen__Batching__MaxWait): a few to tens of milliseconds; 20 (default) is under 2 % of a 1024² image\'s time on either GPU.')
@minValue(0)
@maxValue(10000)
param batchMaxWaitMilliseconds int = 20

@description('Milliseconds requests that shared a model call wait for each other at the next stage, so that a batch moves from Stage C to B to A together (Wuerstchen__Batching__CohortWait); the wait ends when all are there. 100 (default); 0 turns it off.')
@minValue(0)
@maxValue(10000)
param batchCohortWaitMilliseconds int = 100

@description('Stage activities (Stage C, B, A) a replica accepts at once, batched or waiting for a batch (Wuerstchen__Batching__MaxConcurrentStageActivities); 0 (default) is twice the batch images, so the next batch gathers while one runs. The host\'s own activity limit is set a few above it.')
@minValue(0)
@maxValue(1024)
param maxConcurrentStageActivities int = 0

@description('false deploys everything but the Functions app (identity, roles, storage, environment): the first step of a first deployment, so role assignments can propagate before the first revision starts. infra/deploy.sh sets it.')
param deployApp bool = true

@description('When the retraining timer checks the scheduled datasets for changed images or captions: a 6-field NCRONTAB expression (seconds first), UTC.')
param retrainingSchedule string = '0 0 3 * * *'

@description('Durable Task hub name (WUERSTCHEN_TASK_HUB): 3-45 letters and digits, starting with a letter; one hub per environment.')
@minLength(3)
@maxLength(45)
param taskHubName string = 'wuerstchen${environmentName}'

@description('Control-queue partitions of the task hub; must equal extensions.durableTask.storageProvider.partitionCount in host.json.')
@minValue(1)
@maxValue(16)
param durablePartitionCount int = 4

@description('Replication of the app\'s storage account (task hub, images, checkpoints, datasets).')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param storageSku string = 'Standard_LRS'

@description('Days a deleted blob or container can be restored.')
@minValue(1)
@maxValue(365)
param softDeleteRetentionDays int = 7

@description('Days after its last change that an intermediate blob (latents, generation plans and progress) is deleted by the storage lifecycle rule; the app\'s retention timer (Wuerstchen__Retention__Period, 7 days by default) purges them sooner, so keep this longer.')
@minValue(1)
@maxValue(3650)
param intermediateBlobRetentionDays int = 30

@description('Also create a `models` blob container in the app\'s storage account (a staging copy of the weights); the app reads the weights from the mounted share.')
param createModelsBlobContainer bool = false

@description('SKU of the model share\'s storage account: Premium_LRS gives provisioned SSD throughput for cold starts; Standard_LRS is cheaper for dev.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Premium_LRS'
  'Premium_ZRS'
])
param modelStorageSku string = 'Standard_LRS'

@description('Size of the model share in GiB (the published weights take about 10 GB; Premium throughput grows with the size).')
@minValue(100)
@maxValue(102400)
param modelShareQuotaGiB int = 100

@description('Days Log Analytics keeps logs.')
@minValue(30)
@maxValue(730)
param logRetentionInDays int = 30

@description('Expose the HTTP API on the internet (true) or only inside the Container Apps environment (false).')
param ingressExternal bool = true

@description('CIDR ranges allowed to call the API, for example ["203.0.113.0/24"]; empty allows any address.')
param ingressAllowedCidrs string[] = []

@description('Extra tags for every resource.')
param tags { *: string } = {}

@description('Alert when more than this percentage of stage activities failed within 15 minutes (docs/operations.md).')
@minValue(1)
@maxValue(100)
param alertFailureRatePercent int = 10

@description('Alert when a generation waited longer than this many seconds for its Stage C to start (docs/operations.md).')
@minValue(60)
param alertQueueAgeSeconds int = 900

@description('Resource ID of an action group the alerts notify; empty: they show in the portal only.')
param alertActionGroupId string = ''

var allTags = union(tags, {
  workload: 'wuerstchen-functions'
  environment: environmentName
})

// Names. Storage account names take 3-24 lowercase letters and digits and are global: a short stem plus 11-13
// characters of a hash of the resource group, workload and environment.
var prefix = toLower('${baseName}-${environmentName}')
var suffix = uniqueString(resourceGroup().id, baseName, environmentName)
var stem = toLower('${take(replace(baseName, '-', ''), 6)}${take(replace(environmentName, '-', ''), 4)}')
var storageName = take('st${stem}${suffix}', 24)
var modelStorageName = take('stm${stem}${suffix}', 24)
var gpuProfileName = gpuProfile == 'Consumption-GPU-NC24-A100' ? 'gpu-a100' : 'gpu-t4'
var appInsightsName = 'appi-${prefix}'

// Fixed parts of the app's contract with its storage and model mount.
var dataContainerName = 'wuerstchen'
var jobsQueueName = 'generation-jobs'
var modelShareName = 'models'
var modelsMountPath = '/mnt/models'

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${prefix}-func'
  location: location
  tags: allTags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    logAnalyticsName: 'log-${prefix}'
    appInsightsName: appInsightsName
    retentionInDays: logRetentionInDays
    tags: allTags
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  params: {
    location: location
    namePrefix: 'alert-${prefix}'
    appInsightsName: appInsightsName
    failureRatePercent: alertFailureRatePercent
    queueAgeSeconds: alertQueueAgeSeconds
    actionGroupId: alertActionGroupId
    tags: allTags
  }
  // The component is passed by its deterministic name (what-if can predict the rules), so the order is explicit.
  dependsOn: [
    monitoring
  ]
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    name: storageName
    skuName: storageSku
    dataContainerName: dataContainerName
    createModelsContainer: createModelsBlobContainer
    jobsQueueName: jobsQueueName
    softDeleteRetentionDays: softDeleteRetentionDays
    appIdentityId: identity.id
    appPrincipalId: identity.properties.principalId
    tags: allTags
  }
}

module retentionLifecycle 'modules/retentionLifecycle.bicep' = {
  name: 'retention-lifecycle'
  params: {
    storageAccountName: storageName
    dataContainerName: dataContainerName
    intermediateRetentionDays: intermediateBlobRetentionDays
  }
  // The account is passed by its deterministic name (what-if can predict the policy), so the order is explicit.
  dependsOn: [
    storage
  ]
}

module modelStorage 'modules/modelStorage.bicep' = {
  name: 'model-storage'
  params: {
    location: location
    name: modelStorageName
    skuName: modelStorageSku
    shareName: modelShareName
    shareQuotaGiB: modelShareQuotaGiB
    tags: allTags
  }
}

module acrPull 'modules/acrPull.bicep' = if (!empty(containerRegistryName)) {
  name: 'acr-pull'
  scope: resourceGroup(containerRegistryResourceGroupName)
  params: {
    registryName: containerRegistryName
    identityId: identity.id
    principalId: identity.properties.principalId
  }
}

module environment 'modules/containerAppsEnvironment.bicep' = {
  name: 'container-apps-environment'
  params: {
    location: location
    name: 'cae-${prefix}'
    gpuProfile: gpuProfile
    gpuProfileName: gpuProfileName
    workspaceId: monitoring.outputs.workspaceId
    modelStorageAccountName: modelStorageName
    modelShareName: modelShareName
    modelStorageName: 'models'
    tags: allTags
  }
  // Names are passed as the deterministic values they are (what-if can then predict the resources), so the order
  // on the model share is explicit.
  dependsOn: [
    modelStorage
  ]
}

module functionApp 'modules/functionApp.bicep' = if (deployApp) {
  name: 'function-app'
  params: {
    location: location
    name: 'ca-${prefix}-func'
    environmentId: environment.outputs.id
    workloadProfileName: gpuProfileName
    gpuProfile: gpuProfile
    image: image
    registryServer: empty(containerRegistryName) ? '' : acrPull!.outputs.loginServer
    identityId: identity.id
    identityClientId: identity.properties.clientId
    storageAccountName: storage.outputs.name
    blobEndpoint: storage.outputs.blobEndpoint
    dataContainerName: dataContainerName
    jobsQueueName: jobsQueueName
    taskHubName: taskHubName
    durablePartitionCount: durablePartitionCount
    appInsightsName: appInsightsName
    modelStorageName: environment.outputs.modelStorageName
    modelsMountPath: modelsMountPath
    modelPrecision: modelPrecision
    retrainingSchedule: retrainingSchedule
    retrainingWakeWindow: retrainingWakeWindow
    modelCacheMaxGiB: modelCacheMaxGiB
    batchMaxImages: batchMaxImages
    batchMaxWaitMilliseconds: batchMaxWaitMilliseconds
    batchCohortWaitMilliseconds: batchCohortWaitMilliseconds
    maxConcurrentStageActivities: maxConcurrentStageActivities
    minReplicas: minReplicas
    maxReplicas: maxReplicas
    ingressExternal: ingressExternal
    ingressAllowedCidrs: ingressAllowedCidrs
    tags: allTags
  }
  // The identity must hold its data roles and AcrPull before the first revision starts (or the host cannot reach
  // storage and the image pull is refused): storageAccountName and registryServer make this module wait for the
  // storage and acr-pull modules, role assignments included. That orders the ARM operations, not Entra ID's
  // propagation of the assignments, which can take minutes: infra/deploy.sh therefore deploys a new environment
  // with deployApp=false first and waits before creating the app. The App Insights component is passed by name; the
  // environment (environmentId) already waits for the monitoring module.
}

@description('HTTPS base URL of the API; empty with deployApp=false.')
output apiBaseUrl string = deployApp ? 'https://${functionApp!.outputs.fqdn}/api' : ''

@description('Name of the container app (also with deployApp=false, when it does not exist yet).')
output functionAppName string = 'ca-${prefix}-func'

@description('The template.scale infra/deploy.sh PATCHes onto the app after every deployment (the scale-rule override); empty with deployApp=false.')
output functionAppScaleOverride scaleOverride? = deployApp ? functionApp!.outputs.scaleOverride : null

@description('Name of the Container Apps environment (for the GPU quota check: az containerapp env list-usages).')
output environmentName string = 'cae-${prefix}'

@description('The serverless GPU profile type the app runs on.')
output gpuProfile string = gpuProfile

@description('Most replicas of the app: each one GPU; a rollout needs up to twice as many GPUs of quota.')
output maxReplicas int = maxReplicas

@description('Tensor precision the app runs with (after following the GPU when modelPrecision is empty); empty with deployApp=false.')
output modelPrecision string = deployApp ? functionApp!.outputs.precision : ''

@description('Name of the app\'s storage account (images, checkpoints, task hub).')
output storageAccountName string = storage.outputs.name

@description('Name of the storage account holding the model share.')
output modelStorageAccountName string = modelStorage.outputs.name

@description('Name of the file share the models are uploaded to.')
output modelShareName string = modelStorage.outputs.shareName

@description('Client ID of the app\'s user-assigned identity.')
output identityClientId string = identity.properties.clientId

@description('Queue that takes bulk generation jobs.')
output jobsQueueName string = jobsQueueName
