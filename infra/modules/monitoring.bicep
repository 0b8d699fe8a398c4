// Log Analytics workspace (Container Apps console/system logs, Functions telemetry) and a workspace-based
// Application Insights component for the Functions host and worker.

@description('Azure region of the resources.')
param location string

@description('Name of the Log Analytics workspace.')
param logAnalyticsName string

@description('Name of the Application Insights component.')
param appInsightsName string

@description('Days the workspace keeps logs (30 is included in the ingestion price; up to 730).')
@minValue(30)
@maxValue(730)
param retentionInDays int

@description('Tags applied to every resource.')
param tags { *: string }

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      // Nothing here sends logs with the workspace's shared key: the Container Apps environment streams through a
      // diagnostic setting (destination 'azure-monitor') and Application Insights ingests through its own endpoint.
      disableLocalAuth: true
      enableLogAccessUsingOnlyResourcePermissions: true
    }
    publicNetworkAccessForIngestion: 'Enabled'
    publicNetworkAccessForQuery: 'Enabled'
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
    publicNetworkAccessForIngestion: 'Enabled'
    publicNetworkAccessForQuery: 'Enabled'
    // Local (connection-string) ingestion stays on: the app's settings contract carries only
    // APPLICATIONINSIGHTS_CONNECTION_STRING. Entra-only ingestion would also need APPLICATIONINSIGHTS_AUTHENTICATION_STRING
    // and the Monitoring Metrics Publisher role for the identity; the ingestion key can only write telemetry.
    DisableLocalAuth: false
  }
}

@description('Resource ID of the Log Analytics workspace.')
output workspaceId string = workspace.id

@description('Name of the Application Insights component (the Functions app reads its connection string).')
output appInsightsName string = appInsights.name
