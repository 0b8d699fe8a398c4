namespace Wuerstchen.Models.Tests;

/// <summary>A model root laid out as a deployment's would be, the published names pointing at the fixture models.</summary>
public static class FixtureModelRoot
{
    /// <summary>Creates <paramref name="root"/> with links <c>warp-ai/wuerstchen-prior</c>, <c>warp-ai/wuerstchen</c> and <c>effnet</c>; returns it.</summary>
    public static string Create(string root)
    {
        Directory.CreateDirectory(Path.Combine(root, "warp-ai"));
        Directory.CreateSymbolicLink(Path.Combine(root, "warp-ai", "wuerstchen-prior"), ParityFixtures.PathOf("models/prior-pipeline"));
        Directory.CreateSymbolicLink(Path.Combine(root, "warp-ai", "wuerstchen"), ParityFixtures.PathOf("models/decoder-pipeline"));
        Directory.CreateSymbolicLink(Path.Combine(root, "effnet"), ParityFixtures.PathOf("models/effnet"));
        return root;
    }
}
