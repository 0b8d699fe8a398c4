using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Wuerstchen.Models.Tests;
using Wuerstchen.Pipeline.Storage;

namespace Wuerstchen.Pipeline.Tests.Storage;

public sealed class StorageOptionsTests
{
    private const string Key = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net";

    public static TheoryData<StorageOptions, string> InvalidOptions => new()
    {
        { new StorageOptions(), "Wuerstchen:Storage:Kind is required: FileSystem or AzureBlob." },
        { new StorageOptions { Kind = (StorageKind)7 }, "Wuerstchen:Storage:Kind '7' is not one of FileSystem, AzureBlob." },
        { new StorageOptions { Kind = StorageKind.FileSystem, RootPath = " " }, "Wuerstchen:Storage:RootPath is required when Wuerstchen:Storage:Kind is FileSystem." },
        {
            new StorageOptions { Kind = StorageKind.AzureBlob },
            "Set exactly one of Wuerstchen:Storage:ConnectionString and Wuerstchen:Storage:ServiceUri when Wuerstchen:Storage:Kind is AzureBlob."
        },
        {
            new StorageOptions { Kind = StorageKind.AzureBlob, ConnectionString = Key, ServiceUri = "https://acct.blob.core.windows.net" },
            "Set exactly one of Wuerstchen:Storage:ConnectionString and Wuerstchen:Storage:ServiceUri when Wuerstchen:Storage:Kind is AzureBlob."
        },
        {
            new StorageOptions { Kind = StorageKind.AzureBlob, ConnectionString = "AccountKey=secret-value;Nonsense" },
            "Wuerstchen:Storage:ConnectionString is not a valid storage connection string."
        },
        {
            new StorageOptions { Kind = StorageKind.AzureBlob, ServiceUri = "http://acct.blob.core.windows.net" },
            "Wuerstchen:Storage:ServiceUri 'http://acct.blob.core.windows.net' is not an https blob endpoint without a query (e.g. https://account.blob.core.windows.net)."
        },
        {
            new StorageOptions { Kind = StorageKind.AzureBlob, ServiceUri = "https://acct.blob.core.windows.net/?sv=2024&sig=x" },
            "Wuerstchen:Storage:ServiceUri 'https://acct.blob.core.windows.net/?sv=2024&sig=x' is not an https blob endpoint without a query (e.g. https://account.blob.core.windows.net)."
        },
        {
            new StorageOptions { Kind = StorageKind.AzureBlob, ServiceUri = "https://acct.blob.core.windows.net", ManagedIdentityClientId = "my-identity" },
            "Wuerstchen:Storage:ManagedIdentityClientId 'my-identity' is not a client ID (a GUID)."
        },
        {
            new StorageOptions { Kind = StorageKind.AzureBlob, ConnectionString = Key, ManagedIdentityClientId = "0f8fad5b-d9cb-469f-a165-70867728950e" },
            "Wuerstchen:Storage:ManagedIdentityClientId applies only with Wuerstchen:Storage:ServiceUri, not with a connection string."
        },
        {
            new StorageOptions { Kind = StorageKind.AzureBlob, ConnectionString = Key, Container = "Bad_Name" },
            "Wuerstchen:Storage:Container 'Bad_Name' is not a valid container name (3–63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit)."
        },
    };

    [Theory]
    [MemberData(nameof(InvalidOptions))]
    public void ValidationNamesTheSetting(StorageOptions options, string expected)
    {
        Assert.Contains(expected, options.Validate());
        var error = Assert.Throws<ArgumentException>(() => BlobStoreFactory.Create(options));
        Assert.Contains(expected, error.Message);
        Assert.DoesNotContain("secret-value", error.Message);
    }

    [Theory]
    [InlineData("ab")]
    [InlineData("-abc")]
    [InlineData("abc-")]
    [InlineData("a--b")]
    [InlineData("UPPER")]
    [InlineData("")]
    public void ContainerNamesFollowAzureRules(string container)
    {
        var options = new StorageOptions { Kind = StorageKind.AzureBlob, ConnectionString = Key, Container = container };

        Assert.Contains($"Wuerstchen:Storage:Container '{container}'", Assert.Single(options.Validate()));
        options.Container = "a-1" + new string('x', 60);
        Assert.Empty(options.Validate());
    }

    [Fact]
    public void ValidOptionsMakeTheStoreTheyDescribe()
    {
        using var temp = new TempDirectory();
        var fileSystem = BlobStoreFactory.Create(new StorageOptions { Kind = StorageKind.FileSystem, RootPath = temp.Path });
        Assert.IsType<FileSystemBlobStore>(fileSystem);
        Assert.Equal(temp.Path, fileSystem.Description);

        var azurite = BlobStoreFactory.Create(new StorageOptions { Kind = StorageKind.AzureBlob, ConnectionString = "UseDevelopmentStorage=true" });
        Assert.IsType<AzureBlobStore>(azurite);
        Assert.Equal("http://127.0.0.1:10000/devstoreaccount1/wuerstchen", azurite.Description);

        var identity = BlobStoreFactory.Create(new StorageOptions
        {
            Kind = StorageKind.AzureBlob,
            ServiceUri = "https://acct.blob.core.windows.net",
            ManagedIdentityClientId = "0f8fad5b-d9cb-469f-a165-70867728950e",
            Container = "images",
        });
        Assert.Equal("https://acct.blob.core.windows.net/images", identity.Description);
    }

    [Fact]
    public void AddWuerstchenStorageBindsTheSectionAndRegistersOneStore()
    {
        using var temp = new TempDirectory();
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Wuerstchen:Storage:Kind"] = "FileSystem",
            ["Wuerstchen:Storage:RootPath"] = temp.Path,
        }).Build();

        using var provider = new ServiceCollection().AddWuerstchenStorage(configuration).BuildServiceProvider();

        var store = provider.GetRequiredService<IBlobStore>();
        Assert.IsType<FileSystemBlobStore>(store);
        Assert.Same(store, provider.GetRequiredService<IBlobStore>());
        Assert.Equal(temp.Path, provider.GetRequiredService<IOptions<StorageOptions>>().Value.RootPath);
    }

    [Fact]
    public async Task InvalidConfigurationStopsTheHostFromStarting()
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Wuerstchen:Storage:Kind"] = "AzureBlob",
            ["Wuerstchen:Storage:ConnectionString"] = "UseDevelopmentStorage=true",
            ["Wuerstchen:Storage:Container"] = "Bad_Name",
        });
        builder.Services.AddWuerstchenStorage(builder.Configuration);
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(TestContext.Current.CancellationToken));

        Assert.Contains("Wuerstchen:Storage:Container 'Bad_Name' is not a valid container name", error.Message);
    }
}
