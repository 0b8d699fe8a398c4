using OpenQA.Selenium;

namespace Wuerstchen.Web.Tests;

/// <summary>The web app's pages on a real page in headless Chromium, against <c>wuerstchen serve</c> on the fixture models.</summary>
[Collection(WebAppCollection.Name)]
public sealed class WebAppTests(WebAppFixture app)
{
    private IWebDriver Browser => app.Browser;

    private IWebElement Form => Browser.FindElement(By.CssSelector("main form.panel"));

    private void Set(IWebElement form, string name, string value) =>
        ((IJavaScriptExecutor)Browser).ExecuteScript(
            "const e = arguments[0].elements[arguments[1]]; e.value = arguments[2]; e.dispatchEvent(new Event('input', {bubbles: true})); e.dispatchEvent(new Event('change', {bubbles: true}));",
            form, name, value);

    private void Type(IWebElement form, string name, string text)
    {
        var element = form.FindElement(By.Name(name));
        element.Clear();
        element.SendKeys(text);
    }

    /// <summary>Records every text the progress lines and stage labels show, so a test can tell what the user saw.</summary>
    private void RecordProgress() => ((IJavaScriptExecutor)Browser).ExecuteScript("""
        window.__seen = [];
        new MutationObserver(() => {
          for (const e of document.querySelectorAll('.status-line, .stages .muted')) window.__seen.push(e.textContent);
        }).observe(document.getElementById('main'), { subtree: true, childList: true, characterData: true });
        """);

    private IReadOnlyList<string> Seen() =>
        ((IReadOnlyCollection<object>)((IJavaScriptExecutor)Browser).ExecuteScript("return window.__seen;")!).Select(o => (string)o).ToArray();

    private static bool Loaded(IWebElement image) =>
        image.GetAttribute("src")?.StartsWith("blob:", StringComparison.Ordinal) == true && image.GetDomProperty("complete") == "True"
        && int.Parse(image.GetDomProperty("naturalWidth") ?? "0", System.Globalization.CultureInfo.InvariantCulture) > 0;

    private void FillTinyGeneration(IWebElement form, string prompt, int priorSteps = 2, int decoderSteps = 2, int size = 128)
    {
        Type(form, "prompt", prompt);
        Set(form, "width", size.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Set(form, "height", size.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Set(form, "seed", "7");
        Set(form, "priorSteps", priorSteps.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Set(form, "decoderSteps", decoderSteps.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void GenerateShowsProgressTheImageAndItsRecipeThenRedecodesAndOpensInTheGallery()
    {
        app.Open("#/generate");
        var form = Form;
        // Enough steps at 256 px that the page polls (every 0.7 s) at least once while a stage runs.
        FillTinyGeneration(form, "a red square on white", priorSteps: 200, decoderSteps: 100, size: 256);
        RecordProgress();
        form.FindElement(By.CssSelector("button[type=submit]")).Click();

        var generation = app.Wait(d => d.FindElement(By.CssSelector("section.generation")), "the generation's block");
        string id = generation.GetAttribute("data-id")!;
        var image = app.Wait(d => generation.FindElements(By.CssSelector("figure.image img")).FirstOrDefault(Loaded), "the generated image");
        Assert.Equal("a red square on white", image.GetAttribute("alt"));
        var seen = Seen();
        Assert.Contains(seen, t => System.Text.RegularExpressions.Regex.IsMatch(t, @"step \d+ of (200|100)"));
        Assert.Contains(seen, t => t.StartsWith("Done: 1 image", StringComparison.Ordinal));
        string recipe = generation.FindElement(By.CssSelector("dl.recipe")).Text;
        Assert.Contains("a red square on white", recipe);
        Assert.Contains("256 × 256", recipe);
        Assert.Contains("prior-pipeline", recipe);
        app.Screenshot("generate");

        // Re-decode: a new decoder seed on the same Stage C latents, followed in its own block.
        var redecode = generation.FindElement(By.CssSelector("form.redecode"));
        Set(redecode, "decoderSeed", "4242");
        redecode.FindElement(By.CssSelector("button[type=submit]")).Click();
        var second = app.Wait(d => d.FindElements(By.CssSelector("section.generation")).FirstOrDefault(s => s.GetAttribute("data-id") != id), "the re-decode's block");
        string redecodeId = second.GetAttribute("data-id")!;
        app.Wait(d => second.FindElements(By.CssSelector("figure.image img")).FirstOrDefault(Loaded), "the re-decoded image");
        Assert.Contains("4242", second.FindElement(By.CssSelector("dl.recipe")).Text);
        Assert.Contains("Re-decode", second.FindElement(By.TagName("h2")).Text);

        // The gallery: newest first, so the re-decode leads; opening the original shows its recipe and lineage.
        app.Open("#/gallery");
        var cards = app.Wait(d => d.FindElements(By.CssSelector(".gallery a[data-id]")) is { Count: >= 2 } c ? c : null, "gallery cards");
        Assert.Equal(redecodeId, cards[0].GetAttribute("data-id"));
        app.Wait(d => d.FindElements(By.CssSelector(".gallery img")).FirstOrDefault(Loaded), "a gallery thumbnail");
        app.Screenshot("gallery");
        cards.Single(c => c.GetAttribute("data-id") == id).Click();
        app.Wait(d => d.FindElement(By.Id("detail-title")).Text.Contains(id) ? true : (bool?)null, "the generation's page");
        app.Wait(d => d.FindElements(By.CssSelector("figure.image img")).FirstOrDefault(Loaded), "the image on its page");
        string page = Browser.FindElement(By.Id("main")).Text;
        Assert.Contains("Lineage", page);
        Assert.Contains("base model (installed)", page);
        Assert.Contains("a red square on white", page);
        app.Screenshot("gallery-detail");

        // The text filter finds it; another text does not.
        app.Open("#/gallery?q=red%20square");
        app.Wait(d => d.FindElements(By.CssSelector($".gallery a[data-id='{id}']")).FirstOrDefault(), "the filtered gallery");
        app.Open("#/gallery?q=no-such-words");
        app.Wait(d => d.FindElement(By.CssSelector("main [role=status]")).Text == "No generations match." ? true : (bool?)null, "an empty filtered gallery");
    }

    [Fact]
    public void AFieldErrorIsShownNextToItsFieldInWords()
    {
        app.Open("#/generate");
        var form = Form;
        FillTinyGeneration(form, "too many images");
        Set(form, "images", "9");
        form.FindElement(By.CssSelector("button[type=submit]")).Click();

        var images = form.FindElement(By.Name("images"));
        var error = app.Wait(d => d.FindElement(By.Id(images.GetAttribute("id") + "-error")) is { Text.Length: > 0 } e ? e : null, "the images field's error");
        Assert.Contains("outside 1 … 4", error.Text);
        Assert.Equal("true", images.GetAttribute("aria-invalid"));
        Assert.Contains(error.GetAttribute("id")!, images.GetAttribute("aria-describedby")!);
        Assert.Equal(images, Browser.SwitchTo().ActiveElement());
        Assert.DoesNotContain("{", Browser.FindElement(By.Id("main")).Text);
        Assert.Empty(Browser.FindElements(By.CssSelector("section.generation")));
        app.Screenshot("generate-field-error");
    }

    [Fact]
    public void AGenerationCanBeCancelledWhileItRuns()
    {
        app.Open("#/generate");
        var form = Form;
        FillTinyGeneration(form, "a long one", priorSteps: 200, decoderSteps: 100, size: 1024);
        form.FindElement(By.CssSelector("button[type=submit]")).Click();
        var generation = app.Wait(d => d.FindElement(By.CssSelector("section.generation")), "the generation's block");
        app.Wait(d => generation.FindElement(By.CssSelector(".status-line")).Text.Contains("step") ? true : (bool?)null, "progress");
        generation.FindElement(By.XPath(".//button[.='Cancel']")).Click();
        app.Wait(d => generation.FindElement(By.CssSelector(".status-line")).Text == "Cancelled." ? true : (bool?)null, "the cancelled state");
        Assert.Empty(generation.FindElements(By.CssSelector("figure.image")));
    }

    [Fact]
    public void ABulkJobOfThreePromptsRunsAndItsManifestDownloads()
    {
        app.Open("#/bulk");
        var form = Form;
        Type(form, "prompts", "a red square\na blue square\na green square");
        Set(form, "width", "128");
        Set(form, "height", "128");
        Set(form, "seed", "10");
        Set(form, "priorSteps", "2");
        Set(form, "decoderSteps", "2");
        form.FindElement(By.CssSelector("button[type=submit]")).Click();

        app.Wait(d => d.Url.Contains("#/bulk/", StringComparison.Ordinal) ? true : (bool?)null, "the job's page");
        string jobId = Browser.Url.Split("#/bulk/")[1];
        app.Wait(d => d.FindElement(By.CssSelector("main [role=status]")).Text.StartsWith("Done: 3 succeeded", StringComparison.Ordinal) ? true : (bool?)null, "the finished job", TimeSpan.FromMinutes(3));
        var results = app.Wait(d => d.FindElements(By.CssSelector(".results figure.image img")) is { Count: 3 } r && r.All(Loaded) ? r : null, "three result images");
        Assert.Equal(["a red square", "a blue square", "a green square"], results.Select(r => r.GetAttribute("alt")));
        app.Screenshot("bulk");

        Browser.FindElement(By.XPath("//button[.='Download manifest']")).Click();
        string manifest = Path.Combine(app.Downloads, $"{jobId}-manifest.jsonl");
        app.Wait(_ => File.Exists(manifest) ? true : (bool?)null, "the downloaded manifest");
        string[] lines = File.ReadAllLines(manifest).Where(l => l.Length > 0).ToArray();
        Assert.Equal(3, lines.Length);
        Assert.All(lines, l => Assert.Contains("\"status\":\"succeeded\"", l));
        Browser.FindElement(By.XPath("//button[.='Download zip of images']")).Click();
        app.Wait(_ => File.Exists(Path.Combine(app.Downloads, $"{jobId}.zip")) ? true : (bool?)null, "the downloaded zip");

        app.Open("#/bulk");
        Assert.Contains(jobId, Browser.FindElement(By.CssSelector(".jobs")).Text);
        app.Screenshot("bulk-form");
    }

    [Fact]
    public void AFineTuneOfAFewStepsShowsItsLossCurveGridsAndProblemsThenGeneratesWithTheVersion()
    {
        app.Open("#/finetune");
        var form = Form;
        Type(form, "prefix", "datasets/shapes/");
        Set(form, "recipe", "diffusers");
        Set(form, "basePrior", "prior-pipeline");
        Set(form, "totalSteps", "4");
        Set(form, "stepsPerChunk", "2");
        Set(form, "batchSize", "2");
        Set(form, "resolution", "128");
        Type(form, "validationPrompts", "a red square");
        Set(form, "validationSize", "128");
        Set(form, "validationPriorSteps", "2");
        Set(form, "validationDecoderSteps", "2");
        form.FindElement(By.CssSelector("button[type=submit]")).Click();

        app.Wait(d => d.Url.Contains("#/finetune/", StringComparison.Ordinal) ? true : (bool?)null, "the run's page");
        app.Wait(d => d.FindElement(By.CssSelector("main [role=status]")).Text.StartsWith("Completed at step 4 of 4", StringComparison.Ordinal) ? true : (bool?)null,
            "the finished run", TimeSpan.FromMinutes(4));
        Assert.DoesNotContain("false", Browser.FindElement(By.CssSelector("main .actions")).Text);
        var chart = app.Wait(d => d.FindElement(By.CssSelector("#loss-chart svg")), "the loss chart");
        string[] points = chart.FindElement(By.CssSelector("polyline.train")).GetAttribute("points")!.Split(' ');
        Assert.Equal(4, points.Length);
        Assert.True(chart.FindElements(By.CssSelector("circle.eval")).Count >= 2, "evaluation loss at step 0 and after the chunks");

        var slider = app.Wait(d => d.FindElement(By.Id("grid-slider")), "the grid slider");
        Assert.Equal("1", slider.GetAttribute("max"));
        app.Wait(d => d.FindElements(By.CssSelector("#grids img")).FirstOrDefault(Loaded), "the grid image");
        Assert.Contains("step 4", Browser.FindElement(By.CssSelector("#grids [role=status]")).Text);
        slider.SendKeys(Keys.ArrowLeft);
        app.Wait(d => d.FindElement(By.CssSelector("#grids [role=status]")).Text.Contains("step 2") ? true : (bool?)null, "the earlier checkpoint's grid");
        app.Wait(d => d.FindElements(By.CssSelector("#grids img")).FirstOrDefault(Loaded), "the earlier grid image");
        Assert.Contains("uncaptioned.png", Browser.FindElement(By.Id("problems")).Text);
        app.Screenshot("finetune");

        var use = Browser.FindElement(By.CssSelector("a.button.primary[href^='#/generate?model=']"));
        string model = Uri.UnescapeDataString(use.GetAttribute("href")!.Split("model=")[1]);
        Assert.StartsWith("finetuned/", model);
        use.Click();
        app.Wait(d => d.FindElement(By.Id("main")).GetAttribute("data-page") == "generate" && d.FindElement(By.Id("main")).GetAttribute("data-ready") == "true" ? true : (bool?)null, "Generate");
        Assert.Equal(model, Form.FindElement(By.Name("priorModel")).GetAttribute("value"));

        app.Open("#/models");
        string models = Browser.FindElement(By.Id("main")).Text;
        Assert.Contains(model, models);
        Assert.Contains("prior-pipeline", models);
        Assert.Contains("diffusers", models);
        app.Screenshot("models");

        app.Open("#/finetune");
        app.Screenshot("finetune-form");
    }

    [Fact]
    public void TheGenerateFormWorksFromTheKeyboardAlone()
    {
        app.Open("#/generate");
        var body = Browser.FindElement(By.TagName("body"));
        // The prompt has the focus when the page opens; Tab walks the fields in order; Enter on the button submits.
        Assert.Equal("prompt", Browser.SwitchTo().ActiveElement().GetAttribute("name"));
        Browser.SwitchTo().ActiveElement().SendKeys("keyboard only");
        var order = new List<string>();
        for (int i = 0; i < 20 && Browser.SwitchTo().ActiveElement().GetAttribute("type") != "submit"; i++)
        {
            new OpenQA.Selenium.Interactions.Actions(Browser).SendKeys(Keys.Tab).Perform();
            var active = Browser.SwitchTo().ActiveElement();
            order.Add(active.GetAttribute("name") is { Length: > 0 } name ? name : active.Text);
        }
        Assert.Equal(["negativePrompt", "width", "height", "images", "seed", "Pick a seed", "priorSteps", "priorGuidance", "decoderSteps", "priorModel", "decoderModel", "Generate"], order);
        Assert.NotNull(body);
    }
}
