using System.Diagnostics;

namespace Sombra.Tests.Support;

/// <summary>Runs the real Debian programs the tests talk to (swaks, msmtp, smtp-sink, python3).</summary>
public static class Tools
{
    /// <summary>Debian's python3, which has python3-aiosmtpd; a pyenv python3 on PATH does not.</summary>
    public const string Python = "/usr/bin/python3";

    public static string Require(string path)
    {
        if (!File.Exists(path))
            Assert.Fail($"{path} is missing: run ./test.sh, which installs the Debian packages the tests use.");
        return path;
    }

    public sealed record Result(int ExitCode, string Output, string Error);

    public static async Task<Result> RunAsync(string program, IEnumerable<string> arguments, string? input = null,
        int timeoutSeconds = 60, IDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
            start.Environment[key] = value;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (input is not null)
            await process.StandardInput.WriteAsync(input);
        process.StandardInput.Close();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(timeoutSeconds));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} did not finish in {timeoutSeconds} s");
        }
        return new Result(process.ExitCode, await output, await error);
    }
}
