using System.Diagnostics;
using System.Text.RegularExpressions;
using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using OpenQA.Selenium.Support.UI;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Wuerstchen.Models.Tests;

namespace Wuerstchen.Web.Tests;

[CollectionDefinition(Name)]
public sealed class WebAppCollection : ICollectionFixture<WebAppFixture>
{
    public const string Name = "web app";
}

/// <summary>
/// <c>wuerstchen serve</c> (the built CLI beside the tests) on the tiny fixture models with an API key, a local store
/// that holds a tiny captioned dataset, and one headless Chromium (Debian's chromium and chromedriver) on its web app.
/// The browser has entered the key once, as a user would when the app first asks.
/// </summary>
public sealed partial class WebAppFixture : IAsyncLifetime
{
    public const string ApiKey = "web-tests-key-0123";
    public static readonly System.Drawing.Size Desktop = new(1280, 900);
    public static readonly System.Drawing.Size Phone = new(390, 844);

    private readonly TempDirectory _temp = new();
    private Process? _server;
    private readonly List<string> _serverOutput = [];

    public string BaseUrl { get; private set; } = "";
    public ChromeDriver Browser { get; private set; } = null!;
    public string Downloads => _temp.File("downloads");
    public string Store => _temp.File("store");

    /// <summary>Where screenshots go: WUERSTCHEN_SCREENSHOTS (scripts/screenshots.sh points it at docs/images), else a temp folder.</summary>
    public string Screenshots { get; } = Environment.GetEnvironmentVariable("WUERSTCHEN_SCREENSHOTS") is { Length: > 0 } folder
        ? Path.GetFullPath(folder) : Path.Combine(Path.GetTempPath(), "wuerstchen-web-screenshots");

    public async ValueTask InitializeAsync()
    {
        Directory.CreateDirectory(Downloads);
        Directory.CreateDirectory(Screenshots);
        WriteDataset(Path.Combine(Store, "datasets", "shapes"));
        BaseUrl = await StartServerAsync();
        Browser = StartBrowser();
        Browser.Navigate().GoToUrl(BaseUrl + "/");
        // The first API call is refused without the key: the app asks for it once and keeps it for the session.
        var input = Wait(d => d.FindElement(By.Id("key-input")) is { Displayed: true } e ? e : null, "the API key dialog");
        input.SendKeys(ApiKey + Keys.Enter);
        Wait(d => d.FindElement(By.Id("main")).GetAttribute("data-ready") == "true" ? true : (bool?)null, "the first page");
    }

    private async Task<string> StartServerAsync()
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        foreach (string argument in (string[])["wuerstchen.dll", "serve", "--host", "127.0.0.1", "--port", "0", "--api-key", ApiKey,
                     "--models", ParityFixtures.PathOf("models"), "--prior-model", "prior-pipeline", "--decoder-model", "decoder-pipeline", "--store", Store])
            start.ArgumentList.Add(argument);
        start.Environment["HF_HOME"] = _temp.File("hf-home");
        start.Environment["Wuerstchen__Workflows__ProgressInterval"] = "00:00:00";
        start.Environment["Wuerstchen__Models__CacheRoot"] = _temp.File("model-cache");
        _server = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start.");
        var url = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        void Read(string? line)
        {
            if (line is null)
                return;
            lock (_serverOutput)
                _serverOutput.Add(line);
            if (ServingLine().Match(line) is { Success: true } match)
                url.TrySetResult(match.Groups[1].Value);
        }
        _server.OutputDataReceived += (_, e) => Read(e.Data);
        _server.ErrorDataReceived += (_, e) => Read(e.Data);
        _server.BeginOutputReadLine();
        _server.BeginErrorReadLine();
        var exited = _server.WaitForExitAsync();
        var first = await Task.WhenAny(url.Task, exited, Task.Delay(TimeSpan.FromMinutes(2)));
        if (first != url.Task)
            throw new InvalidOperationException($"wuerstchen serve did not print its URL:\n{ServerOutput}");
        return await url.Task;
    }

    [GeneratedRegex(@"Serving the W\S+ API at (http://[^/\s]+)/")]
    private static partial Regex ServingLine();

    public string ServerOutput
    {
        get
        {
            lock (_serverOutput)
                return string.Join('\n', _serverOutput.TakeLast(80));
        }
    }

    private ChromeDriver StartBrowser()
    {
        string chromium = Environment.GetEnvironmentVariable("CHROMIUM_BIN") ?? "/usr/bin/chromium";
        string driver = Environment.GetEnvironmentVariable("CHROMEDRIVER_BIN") ?? "/usr/bin/chromedriver";
        if (!File.Exists(chromium) || !File.Exists(driver))
            Assert.Fail($"Chromium ({chromium}) or chromedriver ({driver}) is missing: scripts/test.sh installs Debian's chromium and chromium-driver packages.");
        Environment.SetEnvironmentVariable("SE_OFFLINE", "true");
        var options = new ChromeOptions { BinaryLocation = chromium };
        options.AddArguments("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
            $"--window-size={Desktop.Width},{Desktop.Height}", "--lang=en-GB", "--force-device-scale-factor=1");
        options.AddUserProfilePreference("download.default_directory", Downloads);
        options.AddUserProfilePreference("download.prompt_for_download", false);
        // Downloads start after a fetch (the key travels in a header), so the second one is no longer in the click's
        // gesture: allow several, as a user would when Chromium asks.
        options.AddUserProfilePreference("profile.default_content_setting_values.automatic_downloads", 1);
        var service = ChromeDriverService.CreateDefaultService(Path.GetDirectoryName(driver)!, Path.GetFileName(driver));
        service.SuppressInitialDiagnosticInformation = true;
        service.HideCommandPromptWindow = true;
        var browser = new ChromeDriver(service, options, TimeSpan.FromMinutes(2));
        browser.Manage().Window.Size = Desktop;
        return browser;
    }

    public T Wait<T>(Func<IWebDriver, T?> condition, string what, TimeSpan? timeout = null)
    {
        var wait = new WebDriverWait(Browser, timeout ?? TimeSpan.FromSeconds(90)) { PollingInterval = TimeSpan.FromMilliseconds(100) };
        wait.IgnoreExceptionTypes(typeof(NoSuchElementException), typeof(StaleElementReferenceException));
        try
        {
            // Selenium waits on object results (null: not yet), so a value type such as bool? goes through object.
            return (T)wait.Until<object>(d => condition(d))!;
        }
        catch (WebDriverTimeoutException)
        {
            string shot = Path.Combine(Screenshots, "failure-" + Regex.Replace(what, "[^a-z0-9]+", "-") + ".png");
            Browser.GetScreenshot().SaveAsFile(shot);
            throw new Xunit.Sdk.XunitException($"Timed out waiting for {what} (screenshot {shot}).\nPage text:\n{Browser.FindElement(By.TagName("body")).Text}\nServer:\n{ServerOutput}");
        }
    }

    /// <summary>Opens a page of the app and waits until it has drawn itself.</summary>
    public void Open(string hash)
    {
        // The page left behind is marked not ready first, so the wait below sees the new page draw itself; the same
        // address again reloads, so no state of an earlier test stays in the form.
        string url = $"{BaseUrl}/app/{hash}";
        ((IJavaScriptExecutor)Browser).ExecuteScript("document.getElementById('main')?.removeAttribute('data-ready');");
        if (Browser.Url == url)
            Browser.Navigate().Refresh();
        else
            Browser.Navigate().GoToUrl(url);
        Wait(d => d.FindElement(By.Id("main")).GetAttribute("data-ready") == "true" ? true : (bool?)null, $"page {hash}");
    }

    /// <summary>Saves the page as it is at desktop and at phone width (docs/images/{name}-desktop.png, -phone.png).</summary>
    public void Screenshot(string name)
    {
        foreach (var (size, suffix) in new[] { (Desktop, "desktop"), (Phone, "phone") })
        {
            Browser.Manage().Window.Size = size;
            Thread.Sleep(300); // layout and lazy images settle
            Browser.GetScreenshot().SaveAsFile(Path.Combine(Screenshots, $"{name}-{suffix}.png"));
        }
        Browser.Manage().Window.Size = Desktop;
    }

    /// <summary>Coloured squares with captions as name.png + name.txt pairs, and one image without a caption.</summary>
    private static void WriteDataset(string folder)
    {
        Directory.CreateDirectory(folder);
        var colours = new (string Name, Rgb24 Colour)[] { ("red", new(220, 30, 30)), ("blue", new(30, 60, 220)), ("green", new(30, 170, 60)), ("yellow", new(240, 210, 20)) };
        foreach (var (name, colour) in colours)
        {
            using var image = new Image<Rgb24>(32, 32, new Rgb24(255, 255, 255));
            for (int y = 8; y < 24; y++)
                for (int x = 8; x < 24; x++)
                    image[x, y] = colour;
            image.SaveAsPng(Path.Combine(folder, $"{name}.png"));
            File.WriteAllText(Path.Combine(folder, $"{name}.txt"), $"a {name} square");
        }
        File.Copy(Path.Combine(folder, "red.png"), Path.Combine(folder, "uncaptioned.png"));
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            Browser?.Quit();
        }
        catch (WebDriverException)
        {
        }
        if (_server is { HasExited: false })
        {
            _server.Kill(entireProcessTree: true);
            await _server.WaitForExitAsync();
        }
        _server?.Dispose();
        _temp.Dispose();
    }
}
