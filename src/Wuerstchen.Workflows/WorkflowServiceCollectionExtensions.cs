using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Models;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Pipeline.Training;
using Wuerstchen.Workflows.Bulk;
using Wuerstchen.Workflows.Generation;
using Wuerstchen.Workflows.Health;
using Wuerstchen.Workflows.Training;

namespace Wuerstchen.Workflows;

public static class WorkflowServiceCollectionExtensions
{
    /// <summary>
    /// Everything the orchestrations and activities need, bound from configuration (<c>Wuerstchen:Storage</c>,
    /// <c>Wuerstchen:Models</c>, <c>Wuerstchen:Limits</c>, <c>Wuerstchen:Workflows</c>, <c>Wuerstchen:Bulk</c>,
    /// <c>Wuerstchen:Training</c>, <c>Wuerstchen:Preload</c>) and
    /// validated when the host starts.
    /// </summary>
    public static IServiceCollection AddWuerstchenWorkflows(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddWuerstchenStorage(configuration);
        services.AddOptions<ModelOptions>().Bind(configuration.GetSection(ModelOptions.Section)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ModelOptions>, ModelOptionsValidator>());
        services.AddOptions<GenerationLimits>().Bind(configuration.GetSection(GenerationLimits.Section));
        services.AddOptions<WorkflowOptions>().Bind(configuration.GetSection(WorkflowOptions.Section));
        services.AddOptions<BulkOptions>().Bind(configuration.GetSection(BulkOptions.Section));
        services.AddOptions<TrainingOptions>().Bind(configuration.GetSection(TrainingOptions.Section)).ValidateOnStart();
        services.AddOptions<PreloadOptions>().Bind(configuration.GetSection(PreloadOptions.Section));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<TrainingOptions>, TrainingOptionsValidator>());

        services.TryAddSingleton<FineTunedModels>();
        services.TryAddSingleton<ModelLocator>();
        services.TryAddSingleton<ModelHost>();
        services.TryAddSingleton<GenerationStages>();
        services.TryAddSingleton<BatchPlanStore>();
        services.TryAddSingleton<StageActivities>();
        services.TryAddSingleton<GenerationService>();
        services.TryAddSingleton<BulkActivities>();
        services.TryAddSingleton<BulkJobIntake>();
        services.TryAddSingleton<CheckpointStore>();
        services.TryAddSingleton<DatasetPreparer>();
        services.TryAddSingleton<PriorFineTuner>();
        services.TryAddSingleton<ValidationGridRenderer>();
        services.TryAddSingleton<ModelVersionPublisher>();
        services.TryAddSingleton<FineTuneActivities>();
        services.TryAddSingleton<FineTuneService>();
        services.TryAddSingleton<FineTuneScheduler>();
        services.TryAddSingleton<ModelPreloader>();
        services.TryAddSingleton<HealthChecks>();
        services.AddOptions<Retention.RetentionOptions>().Bind(configuration.GetSection(Retention.RetentionOptions.Section))
            .Validate(o => o.Validate().Count == 0, $"{Retention.RetentionOptions.Section}:Period must be positive.").ValidateOnStart();
        services.TryAddSingleton<Retention.RetentionPurger>();
        return services;
    }

    private sealed class TrainingOptionsValidator : IValidateOptions<TrainingOptions>
    {
        public ValidateOptionsResult Validate(string? name, TrainingOptions options)
        {
            var errors = options.Validate();
            return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
        }
    }

    private sealed class ModelOptionsValidator : IValidateOptions<ModelOptions>
    {
        public ValidateOptionsResult Validate(string? name, ModelOptions options)
        {
            var errors = options.Validate();
            return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
        }
    }
}
