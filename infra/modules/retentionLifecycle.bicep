// A lifecycle rule on the app's storage account for the intermediate blobs the app's retention timer purges
// (Wuerstchen__Retention__Period): latents and per-generation plans and progress. The timer purges them together with
// their Durable history and keeps latents that retained work still shares; this rule is the backstop for blobs the
// timer never reaches (a deleted task hub, a stopped app), so it counts in days since the blob last changed and should
// be longer than the retention period. Images, bulk manifests, checkpoints, datasets and model versions are not matched.

@description('Name of the app\'s existing storage account.')
param storageAccountName string

@description('Blob container of the app\'s data (Wuerstchen__Storage__Container).')
param dataContainerName string

@description('Days after its last change that an intermediate blob (latents/, generations/) is deleted.')
@minValue(1)
@maxValue(3650)
param intermediateRetentionDays int

resource account 'Microsoft.Storage/storageAccounts@2024-01-01' existing = {
  name: storageAccountName
}

resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2024-01-01' = {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'purge-intermediate-blobs'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                '${dataContainerName}/latents/'
                '${dataContainerName}/generations/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: intermediateRetentionDays
                }
              }
            }
          }
        }
      ]
    }
  }
}

@description('Name of the lifecycle policy.')
output policyName string = lifecycle.name
