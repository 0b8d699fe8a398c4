using Wuerstchen.Models.Loading;

namespace Wuerstchen.Models.Schedulers;

/// <summary><c>scheduler/scheduler_config.json</c> of both Würstchen repositories: <c>{"s": 0.008, "scaler": 1.0}</c>.</summary>
public sealed record DdpmWuerstchenSchedulerConfig
{
    public const string FileName = "scheduler_config.json";

    public double S { get; init; } = 0.008;
    public double Scaler { get; init; } = 1.0;

    public static DdpmWuerstchenSchedulerConfig Read(string path)
    {
        var config = ConfigReader.Read<DdpmWuerstchenSchedulerConfig>(path);
        ConfigReader.Require(config.S >= 0 && double.IsFinite(config.S), path, "s", "must be a finite non-negative number");
        ConfigReader.Require(config.Scaler > 0 && double.IsFinite(config.Scaler), path, "scaler", "must be a finite positive number");
        return config;
    }
}
