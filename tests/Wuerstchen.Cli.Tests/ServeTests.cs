using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.RegularExpressions;
using Wuerstchen.Models.Tests;

namespace Wuerstchen.Cli.Tests;

/// <summary><c>wuerstchen serve</c> as a user runs it: a process that prints its URL, answers the API over HTTP, and stops on Ctrl+C.</summary>
public sealed partial class ServeTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ServesTheApiWithTheKeyOnLoopbackAndStopsCleanlyOnCtrlC()
    {
        const string key = "serve-test-key-42";
        using var process = CliProcess.Start(["serve", "--port", "0", "--api-key", key, .. CliProcess.FixtureModels(), "--store", _temp.File("store")]);
        var output = new ProcessOutput(process);
        try
        {
            string line = await output.WaitForLineAsync(l => l.StartsWith("Serving", StringComparison.Ordinal), TimeSpan.FromMinutes(2));
            var url = new Uri(UrlPattern().Match(line).Value);
            Assert.Equal("127.0.0.1", url.Host);

            using var http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromMinutes(2) };
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("api/health/live", Token)).StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("api/models", Token)).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync($"api/models?code={key}", Token)).StatusCode);

            // A generation that names no model gets the ones serve was started with.
            using var start = new HttpRequestMessage(HttpMethod.Post, "api/generations")
            {
                Content = new StringContent("""{"prompt":"a tin robot","width":128,"height":128,"priorSteps":2,"decoderSteps":2,"seed":5}""", System.Text.Encoding.UTF8, "application/json"),
            };
            start.Headers.Add("x-functions-key", key);
            start.Headers.Add("Prefer", "wait=60");
            using var done = await http.SendAsync(start, Token);
            string body = await done.Content.ReadAsStringAsync(Token);
            Assert.True(done.StatusCode == HttpStatusCode.OK, body);
            Assert.Equal("wait=60", done.Headers.GetValues("Preference-Applied").Single());
            var status = JsonDocument.Parse(body).RootElement;
            Assert.Equal("Completed", status.GetProperty("status").GetString());
            Assert.Equal("prior-pipeline", Path.GetFileName(status.GetProperty("recipe").GetProperty("settings").GetProperty("priorModel").GetString()));
            string image = status.GetProperty("images")[0].GetString()!;
            using var png = await http.GetAsync(image + "?code=" + key, Token);
            Assert.Equal("image/png", png.Content.Headers.ContentType?.MediaType);

            Interrupt(process);
            using var exit = CancellationTokenSource.CreateLinkedTokenSource(Token);
            exit.CancelAfter(TimeSpan.FromSeconds(30));
            await process.WaitForExitAsync(exit.Token);
            await output.Completion;
            Assert.True(process.ExitCode == 0, output.ToString());
            Assert.Contains("Stopped.", output.ToString());
            // Nothing left behind: the port is free again.
            using var listener = new TcpListener(IPAddress.Loopback, url.Port);
            listener.Start();
            listener.Stop();
        }
        finally
        {
            if (!process.HasExited)
                process.Kill(entireProcessTree: true);
        }
    }

    [Theory]
    [InlineData("--host", "my-laptop", "--host must be an IP address")]
    [InlineData("--port", "70000", "--port must be 0 … 65535")]
    [InlineData("--api-key", "short", "--api-key (or WUERSTCHEN_API_KEY) must be at least 8")]
    public async Task BadOptionsAreRefusedBeforeAnythingStarts(string option, string value, string message)
    {
        var result = await CliProcess.RunAsync(["serve", option, value, .. CliProcess.FixtureModels(), "--store", _temp.File("store")], cancellationToken: Token);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains(message, result.Error);
        Assert.False(Directory.Exists(_temp.File("store")), "the store was touched before the options were checked");
    }

    /// <summary>Ctrl+C: SIGINT to the process (kill -INT, as a terminal sends it).</summary>
    private static void Interrupt(Process process)
    {
        using var kill = Process.Start("kill", ["-INT", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        Assert.Equal(0, kill.ExitCode);
    }

    [GeneratedRegex(@"http://[0-9.]+:[0-9]+/")]
    private static partial Regex UrlPattern();

    /// <summary>A process's standard output and error, read as they come.</summary>
    private sealed class ProcessOutput
    {
        private readonly System.Text.StringBuilder _text = new();
        private readonly List<string> _lines = [];

        public ProcessOutput(Process process)
        {
            Completion = Task.WhenAll(ReadAsync(process.StandardOutput), ReadAsync(process.StandardError));
        }

        public Task Completion { get; }

        private async Task ReadAsync(StreamReader reader)
        {
            while (await reader.ReadLineAsync() is { } line)
            {
                lock (_lines)
                {
                    _lines.Add(line);
                    _text.AppendLine(line);
                }
            }
        }

        public async Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan timeout)
        {
            var watch = Stopwatch.StartNew();
            while (watch.Elapsed < timeout)
            {
                lock (_lines)
                {
                    if (_lines.FirstOrDefault(match) is { } line)
                        return line;
                }
                if (Completion.IsCompleted)
                    break;
                await Task.Delay(50, Token);
            }
            throw new Xunit.Sdk.XunitException($"no such line within {timeout}:\n{this}");
        }

        public override string ToString()
        {
            lock (_lines)
                return _text.ToString();
        }
    }
}
