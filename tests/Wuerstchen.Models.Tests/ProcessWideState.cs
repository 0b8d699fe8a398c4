namespace Wuerstchen.Models.Tests;

/// <summary>
/// Tests that read process-wide state — libtorch's global generator, the process's resident memory — and so must not
/// run beside others: any test that builds a module draws from the global generator and allocates native memory.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessWideState
{
    public const string Name = "process-wide state";
}
