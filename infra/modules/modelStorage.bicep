// Model weights: an Azure Files share that the Container Apps environment mounts read-only into every replica at
// Wuerstchen__Models__Root. The weights (~10 GB for warp-ai/wuerstchen + warp-ai/wuerstchen-prior) are uploaded once
// (infra/README.md) instead of being baked into the image, so images stay small and replicas start without a download.
//
// This is a separate account from the app's storage account on purpose: Container Apps mounts SMB shares with the
// storage account key (the environment's storage definition takes the key, inline or from Key Vault; there is no
// identity-based SMB mount), so this account must allow shared-key access. Kept apart, that key reaches only the
// public model weights, never the task hub, the generated images or the training data, whose account allows no
// shared key at all.

@description('Azure region of the account.')
param location string

@description('Storage account name: 3-24 lowercase letters and digits, globally unique.')
@minLength(3)
@maxLength(24)
param name string

@description('Premium_LRS (FileStorage, provisioned SSD: steadier throughput for cold starts that read the weights) or Standard_LRS/Standard_ZRS (StorageV2, pay per use).')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Premium_LRS'
  'Premium_ZRS'
])
param skuName string

@description('Name of the file share holding the model folders.')
param shareName string

@description('Share size in GiB (Premium shares are billed and sized for throughput by this; minimum 100).')
@minValue(100)
@maxValue(102400)
param shareQuotaGiB int

@description('Tags applied to every resource.')
param tags { *: string }

var premium = startsWith(skuName, 'Premium')

resource account 'Microsoft.Storage/storageAccounts@2024-01-01' = {
  name: name
  location: location
  tags: tags
  kind: premium ? 'FileStorage' : 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: premium ? null : 'Hot'
    // Required: the Container Apps SMB mount authenticates with the account key (see the header).
    allowSharedKeyAccess: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    largeFileSharesState: premium ? null : 'Enabled'
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource fileService 'Microsoft.Storage/storageAccounts/fileServices@2024-01-01' = {
  parent: account
  name: 'default'
  properties: {
    shareDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource share 'Microsoft.Storage/storageAccounts/fileServices/shares@2024-01-01' = {
  parent: fileService
  name: shareName
  properties: {
    enabledProtocols: 'SMB'
    shareQuota: shareQuotaGiB
    accessTier: premium ? 'Premium' : 'Hot'
  }
}

@description('Name of the model storage account.')
output name string = account.name

@description('Name of the model share.')
output shareName string = share.name
