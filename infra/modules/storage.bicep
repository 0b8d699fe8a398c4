// The app's storage account: AzureWebJobsStorage for the Functions host and the Durable Task hub (Azure Storage
// backend: queues, tables, lease and large-message blobs), the blob container for latents, images, checkpoints and
// datasets, and the queue of bulk generation jobs. Identity-only: shared-key access (and account-key SAS) is off; the app's
// user-assigned identity gets the narrowest data roles that cover what the host, Durable and the app do.

@description('Azure region of the account.')
param location string

@description('Storage account name: 3-24 lowercase letters and digits, globally unique.')
@minLength(3)
@maxLength(24)
param name string

@description('Replication: Standard_LRS for dev; Standard_ZRS keeps the task hub and the images through a zone outage.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param skuName string

@description('Blob container for latents, images, checkpoints and datasets (Wuerstchen__Storage__Container).')
param dataContainerName string

@description('Also create a `models` blob container (a staging copy of the weights, e.g. for azcopy into the models share). The app itself reads the weights from the mounted share.')
param createModelsContainer bool

@description('Queue of bulk generation jobs (Wuerstchen__Bulk__QueueName). The host creates `<name>-poison` itself.')
param jobsQueueName string

@description('Days a deleted blob or container can be restored.')
@minValue(1)
@maxValue(365)
param softDeleteRetentionDays int

@description('Resource ID of the app\'s user-assigned identity (names the role assignments deterministically).')
param appIdentityId string

@description('Principal (object) ID of that identity, granted the data roles below.')
param appPrincipalId string

@description('Tags applied to every resource.')
param tags { *: string }

resource account 'Microsoft.Storage/storageAccounts@2024-01-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    // Identity only: the Functions host (AzureWebJobsStorage__accountName/__credential/__clientId), the Durable Task
    // Azure Storage backend, the app's blob client and the KEDA queue scaler all authenticate with the managed identity.
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    isHnsEnabled: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      // Container Apps consumption profiles have no fixed egress address; restrict the network with a VNet-integrated
      // environment and private endpoints (infra/README.md, "Hardening").
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2024-01-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: softDeleteRetentionDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: softDeleteRetentionDays
    }
  }
}

resource dataContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = {
  parent: blobService
  name: dataContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource modelsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = if (createModelsContainer) {
  parent: blobService
  name: 'models'
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2024-01-01' = {
  parent: account
  name: 'default'
}

resource jobsQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2024-01-01' = {
  parent: queueService
  name: jobsQueueName
}

// Built-in data roles (IDs are the same in every tenant), scoped to this account only, never the resource group: the
// Functions host-storage table (functions-reference, "Connecting to host storage with an identity") names Storage Blob
// Data Owner for AzureWebJobsStorage, and the Durable Azure Storage backend adds queue and table data roles.
var roles = {
  // Blob: the host's lease/lock and key blobs (azure-webjobs-hosts, azure-webjobs-secrets), Durable's lease and
  // large-message containers (<hub>-leases, <hub>-largemessages), and the app's latents/images/checkpoints in the data
  // container. Owner, as the Functions documentation lists for host storage; on this account (no hierarchical
  // namespace) it adds to Contributor only ACL management and superuser access.
  blobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  // Queue: the generation-jobs trigger (read, delete, and the host creating generation-jobs-poison), Durable's
  // control and work-item queues (it creates them), and the KEDA azure-queue scaler reading queue lengths.
  // Queue Data Message Processor would not let Durable or the host create queues.
  queueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  // Table: Durable's <hub>Instances, <hub>History and <hub>Partitions tables (table partition management).
  tableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
}

resource roleAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in items(roles): {
    name: guid(account.id, appIdentityId, role.value)
    scope: account
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.value)
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
      description: 'Würstchen Functions app: ${role.key}'
    }
  }
]

@description('Name of the storage account (AzureWebJobsStorage__accountName).')
output name string = account.name

@description('Blob service endpoint (Wuerstchen__Storage__ServiceUri).')
output blobEndpoint string = account.properties.primaryEndpoints.blob
