using Wuerstchen.Models.Loading;
using Wuerstchen.Models.Schedulers;
using Wuerstchen.Models.Text;

namespace Wuerstchen.Models.Pipelines;

/// <summary>
/// What both pipelines load the same way from a pipeline folder: its <c>model_index.json</c> (checked for the pipeline
/// class and components), the validated options, the CLIP text encoder and the scheduler.
/// </summary>
internal sealed record PipelineFolder(ModelIndex Index, InferenceOptions Options, ClipPromptEncoder TextEncoder, DdpmWuerstchenScheduler Scheduler)
{
    public static PipelineFolder Open(ModelRepository repository, InferenceOptions? options, string what, string pipelineClass, params string[] components)
    {
        options ??= new InferenceOptions();
        options.Validate();
        var index = repository.Index ?? throw new ModelConfigException(repository.Root, $"a {what} pipeline folder needs model_index.json.");
        index.Require(pipelineClass, components);
        var scheduler = DdpmWuerstchenScheduler.FromComponent(repository.Component("scheduler"));
        var textEncoder = ClipPromptEncoder.FromRepository(repository, options.DType, options.Device, options.Variant);
        return new PipelineFolder(index, options, textEncoder, scheduler);
    }
}
