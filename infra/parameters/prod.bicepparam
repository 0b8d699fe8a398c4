// Production: A100s, one warm replica for the Durable orchestrations, zone-redundant storage, Premium model share.
//   WUERSTCHEN_IMAGE=<registry>.azurecr.io/wuerstchen-functions:gpu-<tag> WUERSTCHEN_ACR_NAME=<registry> \
//     infra/deploy.sh <rg> infra/parameters/prod.bicepparam
// No secrets here: the image and the registry come from the environment, everything else authenticates with the
// app's managed identity.
using '../main.bicep'

param environmentName = 'prod'

param image = readEnvironmentVariable('WUERSTCHEN_IMAGE')

param containerRegistryName = readEnvironmentVariable('WUERSTCHEN_ACR_NAME', '')

// infra/deploy.sh sets false for the first step of a first deployment (everything but the app).
param deployApp = bool(readEnvironmentVariable('WUERSTCHEN_DEPLOY_APP', 'true'))

param gpuProfile = 'Consumption-GPU-NC24-A100'

// One warm replica: no cold start for the first request, the retraining timer fires, Durable timers are served
// (infra/README.md, "minReplicas: exactly what 0 stops").
param minReplicas = 1

// Each replica is one A100; raise only with matching GPU quota.
param maxReplicas = 3

// bfloat16 on the A100 (compute capability 8.0: bfloat16 tensor cores and fused attention kernels).
param modelPrecision = 'bfloat16'

param storageSku = 'Standard_ZRS'

param softDeleteRetentionDays = 14

param modelStorageSku = 'Premium_LRS'

param modelShareQuotaGiB = 256

param logRetentionInDays = 90
