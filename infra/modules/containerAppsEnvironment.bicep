// Container Apps environment with workload profiles: the default Consumption profile plus one serverless GPU profile
// (consumption GPU profiles can be added to an existing environment; dedicated GPU profiles could not). Logs go to
// Log Analytics through a diagnostic setting, so the workspace needs no shared key. The model share is registered as
// environment storage, mounted read-only by the app.

@description('Azure region of the environment (serverless GPUs are offered in a few regions only; check before deploying).')
param location string

@description('Name of the Container Apps environment.')
param name string

@description('Serverless GPU workload profile type: NVIDIA T4 (8 vCPU, 56 GiB) or NVIDIA A100 (24 vCPU, 220 GiB).')
@allowed([
  'Consumption-GPU-NC8as-T4'
  'Consumption-GPU-NC24-A100'
])
param gpuProfile string

@description('Name under which the GPU profile is registered in the environment (the app selects it by this name).')
param gpuProfileName string

@description('Resource ID of the Log Analytics workspace that receives console and system logs.')
param workspaceId string

@description('Name of the storage account that holds the model share (in this resource group).')
param modelStorageAccountName string

@description('Name of the model file share.')
param modelShareName string

@description('Name of the environment storage definition the app mounts.')
param modelStorageName string

@description('Tags applied to every resource.')
param tags { *: string }

resource modelAccount 'Microsoft.Storage/storageAccounts@2024-01-01' existing = {
  name: modelStorageAccountName
}

resource environment 'Microsoft.App/managedEnvironments@2025-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    appLogsConfiguration: {
      destination: 'azure-monitor'
    }
    workloadProfiles: [
      {
        name: 'Consumption'
        workloadProfileType: 'Consumption'
      }
      {
        name: gpuProfileName
        workloadProfileType: gpuProfile
      }
    ]
    zoneRedundant: false
    publicNetworkAccess: 'Enabled'
  }
}

resource logs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: environment
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        category: 'ContainerAppConsoleLogs'
        enabled: true
      }
      {
        category: 'ContainerAppSystemLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

resource modelStorage 'Microsoft.App/managedEnvironments/storages@2025-07-01' = {
  parent: environment
  name: modelStorageName
  properties: {
    azureFile: {
      accountName: modelAccount.name
      // The SMB mount needs the key (modelStorage.bicep explains why that account is separate). It is read at
      // deployment time and stored by the platform; it never appears in a parameter file or an output.
      accountKey: modelAccount.listKeys().keys[0].value
      shareName: modelShareName
      accessMode: 'ReadOnly'
    }
  }
}

@description('Resource ID of the environment.')
output id string = environment.id

@description('Name of the environment storage definition for the model share.')
output modelStorageName string = modelStorage.name

@description('Default domain of the environment.')
output defaultDomain string = environment.properties.defaultDomain
