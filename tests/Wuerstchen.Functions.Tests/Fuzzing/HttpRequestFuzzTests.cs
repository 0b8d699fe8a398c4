using System.Text;
using CsCheck;
using Microsoft.AspNetCore.Mvc;
using Wuerstchen.Models.Tests;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Workflows.Generation;

namespace Wuerstchen.Functions.Tests.Fuzzing;

/// <summary>Fuzzing of the HTTP request parsers: body reading (size and array caps) and request validation, as the triggers run them.</summary>
public sealed class HttpRequestFuzzTests
{
    private static readonly Gen<string> Values = Gen.OneOf(
        Gen.Const("1"), Gen.Const("-1"), Gen.Const("0"), Gen.Const("128"), Gen.Const("1e400"), Gen.Const("NaN"), Gen.Const("\"NaN\""), Gen.Const("null"),
        Gen.Const("\"a cat\""), Gen.Const("\"\\ud800\""), Gen.Const("[]"), Gen.Const("[1, 0.5, 0]"), Gen.Const("{}"), Gen.Const("true"),
        Gen.Const("9223372036854775807"), Gen.Const("2048"), Gen.Const("\"" + new string('x', 3000) + "\""),
        Gen.Int[0, 6000].Select(n => "[" + string.Join(",", Enumerable.Repeat("0.5", n)) + "]"));

    private static readonly string[] Fields =
    [
        "prompt", "negativePrompt", "width", "height", "images", "seed", "decoderSeed", "priorSteps", "priorTimesteps", "priorGuidance",
        "decoderSteps", "decoderGuidance", "priorModel", "decoderModel", "unknown", "Prompt",
    ];

    [Fact]
    public void GenerationRequestBodiesAreReadAndValidatedIntoAnswersNeverExceptions()
    {
        var structured = Gen.Select(Gen.Int[0, Fields.Length - 1].Array[0, 8], Values.Array[8],
            (fields, values) => "{" + string.Join(",", fields.Select((f, i) => $"\"{Fields[f]}\": {values[i]}")) + "}");
        string valid = "{\"prompt\": \"a red kite\", \"width\": 256, \"height\": 128, \"priorTimesteps\": [1, 0.5, 0], \"seed\": 3}";
        var gen = Gen.Frequency(
            (4, structured),
            (3, Fuzz.Mutations(Encoding.UTF8.GetBytes(valid)).Select(b => Encoding.UTF8.GetString(b))),
            (1, Gen.String[Gen.Char, 0, 300]));
        var limits = new GenerationLimits();
        int answered400 = 0, valid200 = 0;
        Fuzz.RunAnswers("HTTP generation request", gen, 2500, body =>
        {
            var request = HttpRequests.Make("POST", "/api/generations", body);
            if (body.Length % 3 == 0)
                request.ContentLength = null; // as a chunked body arrives
            var (parsed, error) = Wuerstchen.Api.HttpResults.ReadBodyAsync<GenerationRequest>(request, 1 << 16, CancellationToken.None).GetAwaiter().GetResult();
            if (error is not null)
            {
                Assert.True(HttpRequests.StatusOf(error) is 400 or 413, $"reading answered {HttpRequests.StatusOf(error)}");
                answered400++;
                return true;
            }
            var validated = GenerationRequestValidator.Validate(parsed, limits, (name, _) => name.StartsWith("warp-ai/", StringComparison.Ordinal) ? null : $"Unknown model '{name}'.", "float32");
            Assert.True(validated.IsValid == (validated.Batch is not null));
            if (validated.IsValid)
            {
                valid200++;
                Assert.True(validated.Batch!.Settings.WorkPerPrompt <= limits.MaxWorkPerRequest);
            }
            return !validated.IsValid;
        }, [], b => b, new Fuzz.Limits(MaxBytesPerInput: 16L << 20, MaxSecondsPerInput: 5));
        Assert.True(answered400 > 0 && valid200 > 0, $"the generator should reach both outcomes ({answered400} refused, {valid200} valid)");
    }

    [Fact]
    public void RedecodeBodiesAndIdsAreAnswersNeverExceptions()
    {
        var gen = Gen.Select(Gen.String[Gen.Char, 0, 40], Gen.OneOf(Gen.Const("{\"decoderSeed\": 5}"), Gen.Const("{\"decoderSteps\": 1e9}"), Gen.Const("[1]"),
            Gen.Const("{\"decoderModel\": \"\\ud800\"}"), Gen.Const("{\"x\": 1}"), Gen.Const("")), (id, body) => (Id: id, Body: body));
        Fuzz.RunAnswers("HTTP redecode id and body", gen, 1500, sample =>
        {
            Assert.Equal(sample.Id.Length > 0 && sample.Id.Length <= 128 && char.IsAsciiLetterOrDigit(sample.Id[0]) && sample.Id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'),
                GenerationService.IsWellFormedId(sample.Id));
            var request = HttpRequests.Make("POST", "/api/generations/x/redecode", sample.Body);
            var (_, error) = Wuerstchen.Api.HttpResults.ReadBodyAsync<RedecodeRequest>(request, 1 << 16, CancellationToken.None, allowEmpty: true).GetAwaiter().GetResult();
            Assert.True(error is null || error is BadRequestObjectResult);
            return error is not null || !GenerationService.IsWellFormedId(sample.Id);
        }, [], s => $"id '{s.Id}', body {s.Body}", new Fuzz.Limits(MaxBytesPerInput: 4L << 20, MaxSecondsPerInput: 5));
    }
}
