using Wuerstchen.Pipeline.Training;

namespace Wuerstchen.Pipeline.Tests.Hardening;

public sealed class DatasetPrefixTests
{
    private static ValidatedFineTune Validate(string prefix) => FineTuneRequestValidator.Validate(
        new FineTuneRequest { Dataset = new DatasetLocation { Prefix = prefix } }, new TrainingOptions(), (_, _) => null, () => "run");

    [Theory]
    [InlineData("images/", "'images/' holds the app's own blobs")]
    [InlineData("images", "'images/' holds the app's own blobs")]
    [InlineData("images/abc/", "'images/' holds the app's own blobs")]
    [InlineData("generations/", "'generations/' holds the app's own blobs")]
    [InlineData("latents/stage-c", "'latents/' holds the app's own blobs")]
    [InlineData("training/cache/", "'training/' holds the app's own blobs")]
    [InlineData("models/", "'models/' holds the app's own blobs")]
    [InlineData("bulk/", "'bulk/' holds the app's own blobs")]
    [InlineData(".wuerstchen/meta/", "reserved for the store")]
    [InlineData("datasets/.wuerstchen-tmp-1/", "reserved for the store")]
    [InlineData("datasets/../images/", "'..' segment")]
    [InlineData("/datasets/", "absolute")]
    [InlineData("datasets\\pokemon", "contains '\\'")]
    [InlineData("datasets//pokemon", "empty segment")]
    [InlineData("datasets/\u0007/", "control character")]
    [InlineData("", "empty")]
    public void APrefixOfTheAppsOwnBlobsOrNotAPrefixIsRefused(string prefix, string reason)
    {
        var validated = Validate(prefix);

        Assert.False(validated.IsValid);
        Assert.Contains(reason, Assert.Single(validated.Errors["dataset.prefix"]));
    }

    [Theory]
    [InlineData("datasets/pokemon/")]
    [InlineData("datasets/pokemon")]
    [InlineData("imagesets/cats/")]
    [InlineData("my.images/")]
    public void ADataPrefixOutsideTheAppsOwnIsAccepted(string prefix) => Assert.True(Validate(prefix).IsValid, string.Join(" ", Validate(prefix).Errors.SelectMany(e => e.Value)));
}
