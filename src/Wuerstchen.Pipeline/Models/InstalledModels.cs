namespace Wuerstchen.Pipeline.Models;

/// <summary>A model under the model root that a stage can load, with its size on disk.</summary>
public sealed record InstalledModel(string Name, string Stage, long SizeBytes);

/// <summary>The models installed under the model root, per stage: what a client may name as <c>priorModel</c> or <c>decoderModel</c>.</summary>
public sealed class InstalledModels(ModelLocator locator)
{
    public IReadOnlyList<InstalledModel> List() =>
    [
        .. locator.Available(ModelRole.Prior).Select(name => new InstalledModel(name, "prior", SizeOf(name))),
        .. locator.Available(ModelRole.Decoder).Select(name => new InstalledModel(name, "decoder", SizeOf(name))),
    ];

    private long SizeOf(string name)
    {
        if (locator.TryResolve(name, out _) is not { } folder)
            return 0;
        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = 0 };
        // Hub snapshots and linked fixture folders hold symbolic links: the size is that of what they point at.
        return Directory.EnumerateFiles(folder, "*", options).Sum(file =>
        {
            var info = new FileInfo(file);
            return info.LinkTarget is null ? info.Length : (info.ResolveLinkTarget(returnFinalTarget: true) as FileInfo)?.Length ?? 0;
        });
    }
}
