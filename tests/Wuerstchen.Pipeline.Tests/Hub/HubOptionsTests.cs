using Wuerstchen.Pipeline.Hub;

namespace Wuerstchen.Pipeline.Tests.Hub;

public sealed class HubOptionsTests
{
    private static HubOptions From(params (string Name, string Value)[] variables) =>
        HubOptions.FromEnvironment(name => variables.FirstOrDefault(v => v.Name == name).Value);

    [Fact]
    public void DefaultsToTheHubAndTheUsersCache()
    {
        var options = From();

        Assert.Equal(new Uri("https://huggingface.co"), options.Endpoint);
        Assert.Equal(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "huggingface", "hub"), options.CacheDirectory);
        Assert.Null(options.Token);
        Assert.False(options.Offline);
    }

    [Fact]
    public void ReadsTheHuggingFaceVariables()
    {
        var options = From(("HF_ENDPOINT", "http://mirror.local:8080"), ("HF_HOME", "/data/hf"), ("HF_TOKEN", "hf_abc"), ("HF_HUB_OFFLINE", "1"));

        Assert.Equal(new Uri("http://mirror.local:8080"), options.Endpoint);
        Assert.Equal(Path.Combine("/data/hf", "hub"), options.CacheDirectory);
        Assert.Equal("hf_abc", options.Token);
        Assert.True(options.Offline);
    }

    [Theory]
    [InlineData("true", true)]
    [InlineData("YES", true)]
    [InlineData("on", true)]
    [InlineData("0", false)]
    [InlineData("false", false)]
    public void ReadsHfHubOfflineAsHuggingFaceHubDoes(string value, bool offline) =>
        Assert.Equal(offline, From(("HF_HUB_OFFLINE", value)).Offline);

    [Fact]
    public void HfHubCacheWinsOverHfHomeAndXdgCacheHomeIsTheFallback()
    {
        Assert.Equal("/cache/hub", From(("HF_HUB_CACHE", "/cache/hub"), ("HF_HOME", "/data/hf")).CacheDirectory);
        Assert.Equal(Path.Combine("/xdg", "huggingface", "hub"), From(("XDG_CACHE_HOME", "/xdg")).CacheDirectory);
    }

    [Fact]
    public void ToStringNeverShowsTheToken()
    {
        string text = new HubOptions { Token = "hf_secret" }.ToString();

        Assert.DoesNotContain("hf_secret", text);
        Assert.Contains("Token = (set)", text);
    }
}
