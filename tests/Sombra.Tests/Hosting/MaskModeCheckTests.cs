using Sombra.Tests.Support;

namespace Sombra.Tests.Hosting;

/// <summary>sombra check warns when mask mode would still send as anonymous@HostName.</summary>
public sealed class MaskModeCheckTests
{
    private static Task<CliRunner.Result> CheckAsync(string anonymity)
    {
        var path = Path.Combine(TempDirectory.Create("mask-check"), "sombra.json");
        File.WriteAllText(path, $$"""{ "HostName": "relay.example", "Anonymity": {{anonymity}} }""");
        return CliRunner.RunWithConfigAsync(path, null, "check");
    }

    [Fact]
    public async Task MaskModeWithTheDefaultSenderIsAWarningNotAnError()
    {
        var result = await CheckAsync("""{ "Mode": "mask" }""");
        Assert.Equal(0, result.ExitCode);
        var warning = Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("warning: Anonymity:SenderAddress: 'anonymous@relay.example'", warning);
        Assert.Contains("\"Mode\": \"mask\"", result.Output);

        // Written out by hand, it says the same.
        var byHand = await CheckAsync("""{ "Mode": "mask", "SenderAddress": "Anonymous@relay.example" }""");
        Assert.Contains("warning:", byHand.Error);
    }

    [Fact]
    public async Task NoWarningForAnOrdinaryAddressOrInBlockMode()
    {
        var ordinary = await CheckAsync("""{ "Mode": "mask", "SenderAddress": "maria.lopez@relay.example" }""");
        Assert.Equal("", ordinary.Error);
        Assert.Equal("", (await CheckAsync("""{ "Mode": "block" }""")).Error);
    }
}
