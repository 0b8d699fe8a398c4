namespace Wuerstchen.Functions.HostTests.Infrastructure;

/// <summary>The two datasets the shared host's retraining timer watches (app settings <c>Wuerstchen__Training__Scheduled__N__…</c>).</summary>
public static class TimerDatasets
{
    public const string Unchanged = "timer-unchanged";
    public const string Changing = "timer-changing";

    /// <summary>What every scheduled-dataset setting starts with.</summary>
    public const string SettingPrefix = "Wuerstchen__Training__Scheduled__";

    public static string Prefix(string name) => $"datasets/{name}/";

    public static IEnumerable<KeyValuePair<string, string?>> Settings()
    {
        string[] names = [Unchanged, Changing];
        for (int i = 0; i < names.Length; i++)
        {
            string request = $"{SettingPrefix}{i}__Request__";
            foreach (var (key, value) in new Dictionary<string, string>
                     {
                         [$"{SettingPrefix}{i}__Name"] = names[i],
                         [request + "Dataset__Prefix"] = Prefix(names[i]),
                         [request + "Recipe"] = "diffusers",
                         [request + "TotalSteps"] = "2",
                         [request + "StepsPerChunk"] = "2",
                         [request + "BatchSize"] = "4",
                         [request + "Resolution"] = "128",
                         [request + "ValidationPrompts__0"] = "red horizontal stripes on white",
                         [request + "ValidationSeeds__0"] = "3",
                         [request + "ValidationSize"] = "128",
                         [request + "ValidationPriorSteps"] = "2",
                         [request + "ValidationDecoderSteps"] = "2",
                     })
                yield return new(key, value);
        }
    }
}
