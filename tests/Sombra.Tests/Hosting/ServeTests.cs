using System.Diagnostics;
using System.Text.Json;
using Sombra.Tests.Support;

namespace Sombra.Tests.Hosting;

/// <summary><c>sombra serve</c> as a process: start, stop on SIGTERM, exit codes.</summary>
public sealed class ServeTests
{
    private static string WriteConfig(object settings)
    {
        var path = Path.Combine(TempDirectory.Create("serve"), "sombra.json");
        File.WriteAllText(path, JsonSerializer.Serialize(settings));
        return path;
    }

    [Fact]
    public async Task SigtermEndsIdleSessionsWith421AndExitsZero()
    {
        var config = WriteConfig(new
        {
            HostName = "relay.test",
            DataDirectory = TempDirectory.Create("serve-data"),
            Submission = new { Endpoints = new[] { new { Address = "127.0.0.1:0", Tls = "none" } } },
        });
        await using var relay = await RelayProcess.StartAsync(config);
        await relay.WaitForOutputAsync("SHA-256 fingerprint");

        await using var idle = await SmtpDialog.ConnectAsync(relay.Ports[0]);
        Assert.StartsWith("220 relay.test", idle.Greeting);
        Assert.StartsWith("250", await idle.CommandAsync("EHLO c"));

        var started = DateTime.UtcNow;
        Assert.Equal(0, await relay.TerminateAsync());
        Assert.StartsWith("421 4.3.2", await idle.ReadReplyAsync());
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(25), "idle sessions do not hold up a stop");
    }

    /// <summary>Runs <c>sombra serve</c> as a process that is expected to exit by itself.</summary>
    private static async Task<(int ExitCode, string Output, string Error)> ServeToExitAsync(string config)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var dll = Path.Combine(AppContext.BaseDirectory, "sombra.dll");
        foreach (var argument in new[] { dll, "serve", "--config", config })
            start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            await process.WaitForExitAsync();
            Assert.Fail("sombra serve kept running:\n" + await output + await error);
        }
        return (process.ExitCode, await output, await error);
    }

    [Fact]
    public async Task SecondServeOnTheSamePortFailsWithOneLineAndExitsOne()
    {
        await using var first = await TestRelay.StartAsync();
        var config = WriteConfig(new
        {
            HostName = "relay.test",
            DataDirectory = TempDirectory.Create("serve-second"),
            Submission = new
            {
                Endpoints = new[] { new { Address = $"127.0.0.1:{first.PlainPort}", Tls = "none" } },
            },
        });

        var (code, output, error) = await ServeToExitAsync(config);

        Assert.Equal(1, code);
        var line = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains($"127.0.0.1:{first.PlainPort}", line);
        Assert.Contains("in use", line);
        Assert.DoesNotContain("   at ", output + error); // no stack trace anywhere

        // The first relay still has the port to itself.
        await using var dialog = await SmtpDialog.ConnectAsync(first.PlainPort);
        Assert.StartsWith("220 relay.test", dialog.Greeting);
    }

    [Fact]
    public async Task BadConfigurationExitsOneWithOneLinePerError()
    {
        var config = WriteConfig(new { HostName = "bad name", Delivery = new { Tls = "maybe" } });
        var result = await CliRunner.RunWithConfigAsync(config, null, "serve");
        Assert.Equal(1, result.ExitCode);
        Assert.Equal(2, result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public async Task SelfSignedCertificateIsMadeOnceAndReused()
    {
        var data = TempDirectory.Create("serve-cert");
        var config = WriteConfig(new
        {
            HostName = "relay.test",
            DataDirectory = data,
            Submission = new { Endpoints = new[] { new { Address = "127.0.0.1:0", Tls = "starttls" } } },
        });
        string Fingerprint(string output) =>
            output.Split('\n').First(l => l.Contains("fingerprint")).Split("fingerprint ")[1].Split(',')[0];

        string first;
        await using (var relay = await RelayProcess.StartAsync(config))
        {
            await relay.WaitForOutputAsync("fingerprint");
            first = Fingerprint(relay.Output);
            Assert.Equal(0, await relay.TerminateAsync());
        }
        await using (var relay = await RelayProcess.StartAsync(config))
        {
            await relay.WaitForOutputAsync("fingerprint");
            Assert.Equal(first, Fingerprint(relay.Output));
            Assert.Equal(0, await relay.TerminateAsync());
        }
        Assert.Matches("^([0-9a-f]{2}:){31}[0-9a-f]{2}$", first);
    }
}
