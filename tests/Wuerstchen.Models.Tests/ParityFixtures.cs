namespace Wuerstchen.Models.Tests;

/// <summary>
/// The reference implementation's golden tensors, read from <c>WUERSTCHEN_PARITY_DIR</c>
/// (default <c>../shared/fixtures/parity</c> beside the repository). With <c>CI=true</c> a missing
/// fixture set fails the test; elsewhere the test is reported as skipped with the reason.
/// </summary>
public static class ParityFixtures
{
    public const string DirectoryVariable = "WUERSTCHEN_PARITY_DIR";

    public static string Root { get; } = ResolveRoot();

    public static string PathOf(string relativePath)
    {
        string path = Path.Combine(Root, relativePath);
        if (File.Exists(path) || Directory.Exists(path))
            return path;

        string message = $"Parity fixture '{relativePath}' not found under '{Root}'. " +
                         $"Set {DirectoryVariable} to the fixture folder (see README).";
        if (IsCi)
            Assert.Fail(message);
        Assert.Skip(message);
        return path;
    }

    private static bool IsCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    private static string ResolveRoot()
    {
        string? configured = Environment.GetEnvironmentVariable(DirectoryVariable);
        if (!string.IsNullOrWhiteSpace(configured))
            return Path.GetFullPath(configured);
        return Path.GetFullPath(Path.Combine(RepositoryRoot(), "..", "shared", "fixtures", "parity"));
    }

    /// <summary>The folder holding Wuerstchen.Functions.sln above the test binaries.</summary>
    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Wuerstchen.Functions.sln")))
                return dir.FullName;
        }
        return Directory.GetCurrentDirectory();
    }
}
