// Development: one T4, cheapest storage, short log retention.
//   WUERSTCHEN_IMAGE=<registry>.azurecr.io/wuerstchen-functions:gpu-<tag> WUERSTCHEN_ACR_NAME=<registry> \
//     az deployment group create -g <rg> --parameters infra/parameters/dev.bicepparam
// No secrets here: the image and the registry come from the environment, everything else authenticates with the
// app's managed identity.
using '../main.bicep'

param environmentName = 'dev'

param image = readEnvironmentVariable('WUERSTCHEN_IMAGE')

param containerRegistryName = readEnvironmentVariable('WUERSTCHEN_ACR_NAME', '')

param gpuProfile = 'Consumption-GPU-NC8as-T4'

// A warm replica even in dev: the Azure Storage Durable backend does not drive scaling on Container Apps, so with 0 a
// running orchestration can stall until the next trigger wakes the app. 0 removes the idle GPU bill when nobody uses
// dev; then expect cold starts of several minutes and restarts of activities longer than the 15-minute cooldown
// (infra/README.md, "minReplicas").
param minReplicas = 1

param maxReplicas = 1

param modelPrecision = 'bfloat16'

param storageSku = 'Standard_LRS'

param modelStorageSku = 'Standard_LRS'

param logRetentionInDays = 30
