// Development: one T4, cheapest storage, short log retention.
//   WUERSTCHEN_IMAGE=<registry>.azurecr.io/wuerstchen-functions:gpu-<tag> WUERSTCHEN_ACR_NAME=<registry> \
//     infra/deploy.sh <rg> infra/parameters/dev.bicepparam
// No secrets here: the image and the registry come from the environment, everything else authenticates with the
// app's managed identity.
using '../main.bicep'

param environmentName = 'dev'

param image = readEnvironmentVariable('WUERSTCHEN_IMAGE')

param containerRegistryName = readEnvironmentVariable('WUERSTCHEN_ACR_NAME', '')

// infra/deploy.sh sets false for the first step of a first deployment (everything but the app).
param deployApp = bool(readEnvironmentVariable('WUERSTCHEN_DEPLOY_APP', 'true'))

param gpuProfile = 'Consumption-GPU-NC8as-T4'

// A warm replica even in dev. With 0 nothing but the scale-rule override wakes the app: no platform HTTP or timer
// scaling, every wake-up is a cold start of minutes, and the retraining timer fires only inside retrainingWakeWindow
// (infra/README.md, "minReplicas: exactly what 0 stops").
param minReplicas = 1

param maxReplicas = 1

// Empty: the precision follows the GPU, float16 on this T4 (infra/README.md, "GPU profile and precision").
param modelPrecision = ''

param storageSku = 'Standard_LRS'

param modelStorageSku = 'Standard_LRS'

param logRetentionInDays = 30
