using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Generation.Batching;
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
    /// <c>Wuerstchen:Training</c>, <c>Wuerstchen:Preload</c>, <c>Wuerstchen:Webhooks</c>, <c>Wuerstchen:Batching</c>) and validated when the host starts (<see cref="ValidateSettings"/>
    /// where there is no host).
    /// </summary>
    public static IServiceCollection AddWuerstchenWorkflows(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddWuerstchenStorage(configuration);
        services.AddValidatedOptions<ModelOptions>(configuration, ModelOptions.Section, o => o.Validate());
        services.AddValidatedOptions<GenerationLimits>(configuration, GenerationLimits.Section, o => o.Validate());
        services.AddValidatedOptions<WorkflowOptions>(configuration, WorkflowOptions.Section, o => o.Validate());
        services.AddValidatedOptions<BulkOptions>(configuration, BulkOptions.Section, o => o.Validate());
        services.AddValidatedOptions<TrainingOptions>(configuration, TrainingOptions.Section, o => o.Validate());
        services.AddValidatedOptions<PreloadOptions>(configuration, PreloadOptions.Section, o => o.Validate());
        services.AddValidatedOptions<Webhooks.WebhookOptions>(configuration, Webhooks.WebhookOptions.Section, o => o.Validate());
        services.AddValidatedOptions<BatchingOptions>(configuration, BatchingOptions.Section, o => o.Validate());

        services.TryAddSingleton<FineTunedModels>();
        services.TryAddSingleton<ModelLocator>();
        services.TryAddSingleton<InstalledModels>();
        services.TryAddSingleton<ModelHost>();
        services.TryAddSingleton<StageBatcher>();
        services.TryAddSingleton<GenerationStages>();
        services.TryAddSingleton<BatchPlanStore>();
        services.TryAddSingleton<GenerationCancellation>();
        services.TryAddSingleton<StageActivities>();
        services.TryAddSingleton<GenerationGallery>();
        services.TryAddSingleton<GenerationService>();
        services.TryAddSingleton<BulkActivities>();
        services.TryAddSingleton<Webhooks.WebhookActivities>();
        services.TryAddSingleton<BulkJobIntake>();
        services.TryAddSingleton<BulkService>();
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
        services.AddValidatedOptions<Retention.RetentionOptions>(configuration, Retention.RetentionOptions.Section, o => o.Validate());
        services.TryAddSingleton<Retention.RetentionPurger>();
        return services;
    }

    /// <summary>
    /// Binds <typeparamref name="TOptions"/> from <paramref name="section"/> and checks it when the host starts: a bad
    /// value stops the app with messages that name the setting (<c>Wuerstchen:Section:Key</c>).
    /// </summary>
    public static IServiceCollection AddValidatedOptions<TOptions>(this IServiceCollection services, IConfiguration configuration, string section,
        Func<TOptions, IReadOnlyList<string>> validate) where TOptions : class
    {
        services.AddOptions<TOptions>().Bind(configuration.GetSection(section)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<TOptions>>(new ListValidator<TOptions>(validate)));
        return services;
    }

    /// <summary>
    /// Runs the start-up validation of every options section, as a host does when it starts, for a service provider
    /// built without one (the CLI, the tests); throws <see cref="OptionsValidationException"/> naming each bad setting.
    /// </summary>
    public static void ValidateSettings(this IServiceProvider services) => services.GetService<IStartupValidator>()?.Validate();

    private sealed class ListValidator<TOptions>(Func<TOptions, IReadOnlyList<string>> validate) : IValidateOptions<TOptions> where TOptions : class
    {
        public ValidateOptionsResult Validate(string? name, TOptions options)
        {
            var errors = validate(options);
            return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
        }
    }
}
