using System.Diagnostics;
using System.Text;
using Xunit;

namespace Sombra.Tests.Hosting;

/// <summary>Runs the real <c>sombra scrub</c> binary with standard input and output.</summary>
public sealed class ScrubCommandTests
{
    private static async Task<(int Code, string Output, string Error)> Run(string input, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "sombra.dll"));
        start.ArgumentList.Add("scrub");
        foreach (var a in args)
            start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var error = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.StandardInput.WriteAsync(input);
        process.StandardInput.Close();
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);
        return (process.ExitCode, await output, await error);
    }

    private const string Message =
        "Received: from x ([203.0.113.5]) by y\nFrom: Alice <alice@alice.example>\nTo: bob@example.net\n"
        + "X-Mailer: Leaky 1.0\nDate: Tue, 3 Mar 2026 10:00:00 +0100\n\nbody\n";

    [Fact]
    public async Task Scrub_writes_what_would_leave_with_release_headers()
    {
        var (code, output, error) = await Run(Message, "--mode", "mask");

        Assert.Equal(0, code);
        Assert.Empty(error);
        Assert.Matches(@"^Received: from \[[0-9.]+\] \(unknown \[[0-9.]+\]\)\r\n\tby sombra.localhost with ESMTPSA id \w+;\r\n\t.*\+0000\r\nDate: .*\+0000\r\nFrom: anonymous@sombra.localhost\r\n", output);
        Assert.DoesNotContain("alice", output);
        Assert.DoesNotContain("203.0.113.5", output);
        Assert.EndsWith("\r\n\r\nbody\r\n", output);
    }

    [Fact]
    public async Task The_report_names_headers_and_shows_values_only_when_asked()
    {
        var (_, _, names) = await Run(Message, "--report");
        Assert.Contains("message: X-Mailer removed (names the client software)", names);
        Assert.Contains("message: From rewritten", names);
        Assert.DoesNotContain("Leaky", names);

        var (_, _, values) = await Run(Message, "--report", "--show-values");
        Assert.Contains("X-Mailer removed (names the client software): Leaky 1.0", values);
    }

    [Fact]
    public async Task The_report_names_rewrites_of_kept_headers()
    {
        var (code, _, error) = await Run(
            "From: a@a.example\nTo: bob@example.net (via leakc)\n\nbody\n", "--report");

        Assert.Equal(0, code);
        Assert.Contains("message: To rewritten (comments removed)", error);
        Assert.DoesNotContain("leakc", error);
    }

    [Fact]
    public async Task Per_sender_scrub_uses_the_relays_key_but_never_creates_one()
    {
        var data = Path.Combine(Path.GetTempPath(), "sombra-scrub-" + Guid.NewGuid().ToString("N"));
        var config = data + ".json";
        File.WriteAllText(config, $$"""
            { "DataDirectory": "{{data}}", "Anonymity": { "Mode": "mask", "DecoySelection": "per-sender" } }
            """);
        try
        {
            var (code, _, error) = await Run(Message, "--config", config, "--report");
            Assert.Equal(0, code);
            Assert.Contains("one-time key", error);
            Assert.False(Directory.Exists(data), "scrub must not create DataDirectory or its key");

            Directory.CreateDirectory(data);
            File.WriteAllBytes(Path.Combine(data, "decoy.key"), new byte[32]);
            var (_, first, quiet) = await Run(Message, "--config", config, "--report");
            var (_, second, _) = await Run(Message, "--config", config);
            Assert.DoesNotContain("one-time key", quiet);
            Assert.NotEmpty(Decoy(first));
            Assert.Equal(Decoy(first), Decoy(second));
        }
        finally
        {
            if (Directory.Exists(data))
                Directory.Delete(data, recursive: true);
            File.Delete(config);
        }
    }

    private static string Decoy(string output) =>
        System.Text.RegularExpressions.Regex.Match(output, @"^Received: from \[([0-9.]+)\]").Groups[1].Value;

    [Fact]
    public async Task A_refusal_exits_1_with_the_reason()
    {
        var (code, _, error) = await Run("From: a@a.example\nContent-Type: multipart/mixed\n\nx\n");

        Assert.Equal(1, code);
        Assert.Contains("refused: a multipart part has no boundary", error);
    }
}
