using Sombra.Hosting;
using Sombra.Tests.Support;

namespace Sombra.Tests.Hosting;

/// <summary>sombra check refuses Limits values the abuse controls cannot work with.</summary>
public sealed class LimitsConfigTests
{
    private static Task<CliRunner.Result> CheckAsync(string limits)
    {
        var path = Path.Combine(TempDirectory.Create("limits"), "sombra.json");
        File.WriteAllText(path, $$"""{ "Limits": {{limits}} }""");
        return CliRunner.RunWithConfigAsync(path, null, "check");
    }

    [Fact]
    public async Task ImpossibleAuthLimitsAreRefusedOneLineEach()
    {
        var result = await CheckAsync("""
            { "AuthFailuresBeforeBlock": 0, "AuthFailuresBeforeDelay": -1, "AuthBlockDuration": "0s",
              "SharedNetworks": ["127.0.0.1/33"] }
            """);
        Assert.Equal(1, result.ExitCode);
        var lines = result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, lines.Length);
        Assert.Contains(lines, l => l.Contains("Limits:AuthFailuresBeforeBlock"));
        Assert.Contains(lines, l => l.Contains("Limits:AuthFailuresBeforeDelay"));
        Assert.Contains(lines, l => l.Contains("Limits:AuthBlockDuration"));
        Assert.Contains(lines, l => l.Contains("Limits:SharedNetworks:0"));
    }

    [Fact]
    public async Task ABlockLongerThanTheKeysLastIsRefused()
    {
        var result = await CheckAsync("""{ "AuthBlockDuration": "2d" }""");
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("Limits:AuthBlockDuration", result.Error);
        var day = await CheckAsync("""{ "AuthBlockDuration": "1d", "SharedNetworks": ["::1/128"] }""");
        Assert.Equal(0, day.ExitCode);
    }

    [Fact]
    public void ANegativeDelaySetInCodeIsRefused()
    {
        var options = new SombraOptions();
        options.Limits.AuthFailureDelay = TimeSpan.FromSeconds(-1);
        Assert.Equal(["Limits:AuthFailureDelay: must not be negative"], ConfigValidator.Validate(options));
    }
}
