// AcrPull for the app's identity on an existing container registry, deployed at the registry's resource group so the
// registry can live outside the app's resource group. AcrPull is the narrowest built-in role that can pull images
// (no push, no delete, no registry management).

@description('Name of the existing Azure Container Registry.')
param registryName string

@description('Resource ID of the identity that pulls the image (names the role assignment deterministically).')
param identityId string

@description('Principal (object) ID of that identity.')
param principalId string

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

var acrPullRoleId = '7f951dda-4ed3-4680-a7ca-43fe172d538d'

resource acrPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, identityId, acrPullRoleId)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPullRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Würstchen Functions app: pull its image'
  }
}

@description('Login server of the registry (for example myregistry.azurecr.io).')
output loginServer string = registry.properties.loginServer
