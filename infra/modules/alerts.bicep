// Log search alerts on the app's Application Insights telemetry (the worker's OpenTelemetry spans and metrics,
// docs/operations.md): the share of stage activities that fail, and how long generations wait before Stage C starts.
// Both evaluate every 5 minutes over the last 15 and resolve themselves when the condition clears.

@description('Azure region of the alert rules.')
param location string

@description('Name prefix of the alert rules.')
param namePrefix string

@description('Name of the Application Insights component the app sends its telemetry to.')
param appInsightsName string

@description('Alert when more than this percentage of stage activities (StageC, StageB, StageA) failed in 15 minutes (with at least 5 runs).')
@minValue(1)
@maxValue(100)
param failureRatePercent int

@description('Alert when a generation waited longer than this many seconds from submission to its Stage C start, within 15 minutes.')
@minValue(60)
param queueAgeSeconds int

@description('Resource ID of an action group to notify; empty: the alerts fire in the portal only.')
param actionGroupId string

@description('Tags applied to every resource.')
param tags { *: string }

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

var actions = empty(actionGroupId) ? {} : { actionGroups: [ actionGroupId ] }

resource failureRate 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-stage-failure-rate'
  location: location
  tags: tags
  properties: {
    displayName: 'Würstchen: stage failure rate'
    description: 'More than ${failureRatePercent}% of stage activities failed in 15 minutes (docs/operations.md, "Failure rate").'
    severity: 2
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'dependencies | where name in ("StageC", "StageB", "StageA") | summarize runs = count(), failed = countif(success == false) | where runs >= 5 | extend failureRate = 100.0 * failed / runs'
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'failureRate'
          operator: 'GreaterThan'
          threshold: failureRatePercent
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: actions
  }
}

resource queueAge 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-queue-age'
  location: location
  tags: tags
  properties: {
    displayName: 'Würstchen: queue age'
    description: 'A generation waited more than ${queueAgeSeconds} s from submission to its Stage C start (docs/operations.md, "Queue age").'
    severity: 3
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'customMetrics | where name == "wuerstchen.queue.wait" and tostring(customDimensions["wuerstchen.kind"]) != "queue" | summarize queueAge = max(valueMax)'
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'queueAge'
          operator: 'GreaterThan'
          threshold: queueAgeSeconds
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: actions
  }
}

@description('Names of the alert rules.')
output alertNames string[] = [
  failureRate.name
  queueAge.name
]
