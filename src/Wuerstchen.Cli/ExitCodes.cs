namespace Wuerstchen.Cli;

/// <summary>The process exit codes of <c>wuerstchen</c> (documented in the README).</summary>
public static class ExitCodes
{
    public const int Success = 0;

    /// <summary>The work ran and failed (a stage failed after its retries, some prompts of a bulk job failed).</summary>
    public const int Failed = 1;

    /// <summary>Bad arguments or an invalid request; nothing ran.</summary>
    public const int InvalidInput = 2;

    /// <summary>A model is not available: not found locally and not downloadable (offline, unreachable, unknown).</summary>
    public const int ModelUnavailable = 3;

    /// <summary>Stopped by Ctrl+C.</summary>
    public const int Cancelled = 130;
}
