// Production: A100s, one warm replica for the Durable orchestrations, zone-redundant storage, Premium model share.
//   WUERSTCHEN_IMAGE=<registry>.azurecr.io/wuerstchen-functions:gpu-<tag> WUERSTCHEN_ACR_NAME=<registry> \
//     az deployment group create -g <rg> --parameters infra/parameters/prod.bicepparam
// No secrets here: the image and the registry come from the environment, everything else authenticates with the
// app's managed identity.
using '../main.bicep'

param environmentName = 'prod'

param image = readEnvironmentVariable('WUERSTCHEN_IMAGE')

param containerRegistryName = readEnvironmentVariable('WUERSTCHEN_ACR_NAME', '')

param gpuProfile = 'Consumption-GPU-NC24-A100'

// The orchestrating app needs a warm replica: the Azure Storage Durable backend does not drive scaling on Container
// Apps (infra/README.md, "minReplicas").
param minReplicas = 1

// Each replica is one A100; raise only with matching GPU quota.
param maxReplicas = 3

param modelPrecision = 'bfloat16'

param storageSku = 'Standard_ZRS'

param softDeleteRetentionDays = 14

param modelStorageSku = 'Premium_LRS'

param modelShareQuotaGiB = 256

param logRetentionInDays = 90
