using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Wuerstchen.Functions.HostTests.Infrastructure;

namespace Wuerstchen.Functions.HostTests;

/// <summary>Function keys under the real host: made through the admin API, checked by the host before the app sees a request.</summary>
[Collection(HostCollection.Name)]
public sealed class HttpKeyTests(HostFixture host)
{
    private static async Task<HttpResponseMessage> CallAsync(HostFixture host, Route route, string? key)
    {
        using var request = new HttpRequestMessage(new HttpMethod(route.Method), route.Path);
        if (key is not null)
            request.Headers.Add("x-functions-key", key);
        if (route.Body is not null)
            request.Content = FunctionsHost.JsonContent(route.Body);
        return await host.Host.Http.SendAsync(request, TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task EveryHttpFunctionTheHostListsHasARouteCaseThatMatchesItsTemplate()
    {
        await host.EnsureRunningAsync();
        var listed = new Dictionary<string, JsonNode>();
        foreach (var function in (await host.Host.AdminAsync(HttpMethod.Get, "admin/functions"))!.AsArray())
        {
            var trigger = function!["config"]!["bindings"]!.AsArray().FirstOrDefault(b => b.TextOrNull("type") == "httpTrigger");
            if (trigger is not null)
                listed[function.Text("name")] = trigger;
        }

        Assert.Equal(listed.Keys.Order(), Routes.All.Select(r => r.Function).Distinct().Order());
        foreach (var route in Routes.All)
        {
            var trigger = listed[route.Function];
            string template = trigger.Text("route");
            // Parameters match one segment; an optional one (the site root's "{root:maxlength(0)?}") may be empty.
            string escaped = Regex.Replace(Regex.Escape(template), @"\\\{[^}]+\\\?}", "[^/]*");
            var pattern = new Regex("^" + Regex.Replace(escaped, @"\\\{[^}]+}", "[^/]+") + "$");
            Assert.True(pattern.IsMatch(route.Path), $"{route}: the host serves {route.Function} at '{template}'");
            var methods = trigger["methods"]!.AsArray().Select(m => m!.GetValue<string>().ToUpperInvariant());
            Assert.Contains(route.Method, methods);
            Assert.Equal(route.Anonymous, string.Equals(trigger.TextOrNull("authLevel"), "anonymous", StringComparison.OrdinalIgnoreCase));
        }
    }

    [Theory]
    [MemberData(nameof(Routes.Cases), MemberType = typeof(Routes))]
    public async Task EveryRouteAnswers401WithoutItsKeyAndIsAnsweredByTheAppWithIt(string name)
    {
        await host.EnsureRunningAsync();
        var route = Routes.Named(name);
        if (route.Anonymous)
        {
            using var open = await CallAsync(host, route, key: null);
            Assert.True(open.StatusCode == HttpStatusCode.OK, $"{route} without a key: {(int)open.StatusCode}");
            return;
        }

        using (var withoutKey = await CallAsync(host, route, key: null))
            Assert.Equal(HttpStatusCode.Unauthorized, withoutKey.StatusCode);
        using (var wrongKey = await CallAsync(host, route, "not-a-key-of-this-app"))
            Assert.Equal(HttpStatusCode.Unauthorized, wrongKey.StatusCode);
        // Function keys are per function: another route's key does not open this one.
        string otherFunction = host.Keys.Keys.First(f => f != route.Function);
        using (var otherKey = await CallAsync(host, route, host.Keys[otherFunction]))
            Assert.Equal(HttpStatusCode.Unauthorized, otherKey.StatusCode);

        using var withKey = await CallAsync(host, route, host.Keys[route.Function]);
        string body = await withKey.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True((int)withKey.StatusCode is >= 200 and < 500 && withKey.StatusCode != HttpStatusCode.Unauthorized,
            $"{route} with its key: {(int)withKey.StatusCode} {body}");
        if ((int)withKey.StatusCode >= 400)
        {
            // The app's own answer (RFC 7807), not the host's.
            Assert.Equal("application/problem+json", withKey.Content.Headers.ContentType?.MediaType);
            Assert.Equal((int)withKey.StatusCode, JsonNode.Parse(body).Int("status"));
        }
    }
}
