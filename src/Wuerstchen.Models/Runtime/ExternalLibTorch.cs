using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Wuerstchen.Models.Runtime;

/// <summary>
/// Finds and loads LibTorch for the <c>external</c> backend, which ships TorchSharp's bindings without LibTorch's natives:
/// first the folder named by <see cref="DirectoryVariable"/>, else the PyTorch that <c>python3 -c "import torch"</c> finds
/// (<see cref="PythonVariable"/> names another interpreter). Loading <c>libtorch.so</c> by its full path brings in the
/// rest of LibTorch from beside it (its run path is <c>$ORIGIN</c>; a CUDA wheel's also reaches its <c>nvidia/*</c>
/// libraries), after which TorchSharp's own load by name finds them already in the process.
/// </summary>
public static class ExternalLibTorch
{
    /// <summary>A folder holding <c>libtorch_cpu.so</c>: PyTorch's <c>torch/lib</c>, a LibTorch distribution's <c>lib</c>, or the <c>torch</c> package folder.</summary>
    public const string DirectoryVariable = "WUERSTCHEN_LIBTORCH";

    /// <summary>The Python interpreter to ask for PyTorch (default <c>python3</c> on the PATH).</summary>
    public const string PythonVariable = "WUERSTCHEN_PYTHON";

    /// <summary>The LibTorch version TorchSharp 0.107 is built against; others may work (2.11 did in this project's GPU check).</summary>
    public const string ExpectedVersion = "2.10";

    private const string CoreLibrary = "libtorch_cpu.so";

    /// <summary>Where LibTorch was found and how.</summary>
    public sealed record Installation(string Directory, string Source, string? Version)
    {
        /// <summary>Null when the version is the expected one or unknown; otherwise a warning to print.</summary>
        public string? VersionWarning => Version is { } v && !v.StartsWith(ExpectedVersion + ".", StringComparison.Ordinal) && v != ExpectedVersion
            ? $"TorchSharp 0.107 is built for LibTorch {ExpectedVersion}; this is {v}. It may work (2.11 did in this project's GPU check); an undefined-symbol error at start-up means it does not."
            : null;
    }

    /// <summary>Finds LibTorch, or throws <see cref="LibTorchNotFoundException"/> listing every place it looked and why each failed.</summary>
    public static Installation Locate() => Locate(Environment.GetEnvironmentVariable(DirectoryVariable), Environment.GetEnvironmentVariable(PythonVariable));

    public static Installation Locate(string? configuredDirectory, string? python)
    {
        var looked = new List<string>();
        if (!string.IsNullOrWhiteSpace(configuredDirectory))
        {
            if (FindLibraryFolder(configuredDirectory) is { } folder)
                return new Installation(folder, $"{DirectoryVariable}={configuredDirectory}", ReadVersion(folder));
            looked.Add($"{DirectoryVariable}={configuredDirectory}: {(Directory.Exists(configuredDirectory) ? $"no {CoreLibrary} in it or in its lib/ folder" : "no such folder")}");
            // A setting that names the wrong folder is an error to fix, not a reason to pick up some other LibTorch.
            throw new LibTorchNotFoundException(looked);
        }
        looked.Add($"{DirectoryVariable}: not set");

        string interpreter = string.IsNullOrWhiteSpace(python) ? "python3" : python;
        var (torchFolder, version, problem) = AskPython(interpreter);
        if (torchFolder is not null && FindLibraryFolder(torchFolder) is { } found)
            return new Installation(found, $"{interpreter} -c \"import torch\"", version);
        looked.Add($"{interpreter} -c \"import torch\": {problem ?? $"PyTorch {version} at {torchFolder} has no lib/{CoreLibrary}"}");
        throw new LibTorchNotFoundException(looked);
    }

    /// <summary>Loads LibTorch from <paramref name="installation"/> into the process, before TorchSharp's first call.</summary>
    public static Installation Load(Installation installation)
    {
        string library = Path.Combine(installation.Directory, "libtorch.so");
        if (!File.Exists(library))
            library = Path.Combine(installation.Directory, CoreLibrary);
        try
        {
            NativeLibrary.Load(library);
        }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
        {
            throw new LibTorchNotFoundException([$"{library} ({installation.Source}) was found but does not load: {e.Message}"], e);
        }
        return installation;
    }

    private static string? FindLibraryFolder(string folder)
    {
        foreach (string candidate in new[] { folder, Path.Combine(folder, "lib") })
        {
            if (File.Exists(Path.Combine(candidate, CoreLibrary)))
                return Path.GetFullPath(candidate);
        }
        return null;
    }

    /// <summary>PyTorch's <c>torch/version.py</c> beside <c>torch/lib</c>, or a LibTorch distribution's <c>build-version</c>.</summary>
    private static string? ReadVersion(string libraryFolder)
    {
        string parent = Path.GetDirectoryName(libraryFolder) ?? libraryFolder;
        string versionPy = Path.Combine(parent, "version.py");
        if (File.Exists(versionPy))
        {
            foreach (string line in File.ReadLines(versionPy))
            {
                if (line.StartsWith("__version__", StringComparison.Ordinal) && line.Split('\'', '"') is { Length: >= 2 } parts)
                    return parts[1];
            }
        }
        string buildVersion = Path.Combine(parent, "build-version");
        return File.Exists(buildVersion) ? File.ReadAllText(buildVersion).Trim() : null;
    }

    private static (string? Folder, string? Version, string? Problem) AskPython(string interpreter)
    {
        var start = new ProcessStartInfo(interpreter)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("import os, torch; print(os.path.dirname(torch.__file__)); print(torch.__version__)");
        try
        {
            using var process = Process.Start(start)!;
            var output = process.StandardOutput.ReadToEndAsync();
            var error = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(TimeSpan.FromSeconds(60)))
            {
                process.Kill(entireProcessTree: true);
                return (null, null, "did not answer within 60 s");
            }
            string[] lines = output.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (process.ExitCode != 0 || lines.Length < 2)
            {
                string last = error.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? $"exit code {process.ExitCode}";
                return (null, null, last);
            }
            return (lines[0], lines[1], null);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (null, null, $"cannot run {interpreter}: {e.Message}");
        }
    }
}

/// <summary>The external backend found no usable LibTorch. The message lists each place looked at and what was wrong there.</summary>
public sealed class LibTorchNotFoundException(IReadOnlyList<string> looked, Exception? inner = null)
    : Exception(
        "This build uses the external LibTorch backend (-p:TorchBackend=external) and needs LibTorch " +
        $"{ExternalLibTorch.ExpectedVersion} (libtorch.so and libtorch_cpu.so; for GPUs a CUDA build), from a PyTorch installation or a LibTorch distribution. " +
        $"Set {ExternalLibTorch.DirectoryVariable} to its lib folder (PyTorch: site-packages/torch/lib), or make `python3 -c \"import torch\"` work " +
        $"({ExternalLibTorch.PythonVariable} names another interpreter). Looked at: {string.Join("; ", looked)}.", inner)
{
    public IReadOnlyList<string> Looked { get; } = looked;
}
