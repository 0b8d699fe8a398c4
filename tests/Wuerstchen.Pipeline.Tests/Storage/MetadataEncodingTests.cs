using Wuerstchen.Pipeline.Storage;

namespace Wuerstchen.Pipeline.Tests.Storage;

public sealed class MetadataEncodingTests
{
    [Theory]
    [InlineData("plain ascii, with = and ; and \"quotes\"")]
    [InlineData("100%")]
    [InlineData("~")]
    public void PrintableAsciiIsStoredAsItIs(string value) => Assert.Equal(value, AzureBlobStore.EncodeValue(value));

    [Theory]
    [InlineData("Würstchen")]
    [InlineData("🌭")]
    [InlineData("香肠")]
    [InlineData("a\nb")]
    [InlineData("\t")]
    [InlineData(" leading")]
    [InlineData("trailing ")]
    [InlineData("")]
    [InlineData("~utf8~")]
    [InlineData("~utf8~%ZZ")]
    [InlineData("100% and ü")]
    public void EverythingElseIsEncodedToAsciiAndDecodesExactly(string value)
    {
        var encoded = AzureBlobStore.EncodeValue(value);

        Assert.StartsWith(AzureBlobStore.EncodedValueMarker, encoded);
        Assert.All(encoded, c => Assert.InRange(c, '!', '~'));
        Assert.Equal(value, AzureBlobStore.DecodeValue(encoded));
    }

    [Theory]
    [InlineData("~utf8~%")]
    [InlineData("~utf8~%4")]
    [InlineData("~utf8~%G0")]
    public void MalformedEncodedValuesAreReturnedAsTheyAre(string value) => Assert.Equal(value, AzureBlobStore.DecodeValue(value));
}
