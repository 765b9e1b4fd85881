using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;

namespace Sombra.Tests.Support;

/// <summary>
/// <c>sombra serve</c> as a real separate process, for what only a process can show: signals,
/// exit codes, a SIGKILL in the middle of work, and everything it prints.
/// </summary>
public sealed partial class RelayProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly Lock _lock = new();

    private RelayProcess(Process process) => _process = process;

    public int Pid => _process.Id;
    public string Output { get { lock (_lock) return _output.ToString(); } }

    /// <summary>The ports it listens on, in the order of the configured endpoints.</summary>
    public List<int> Ports { get; } = [];

    public static async Task<RelayProcess> StartAsync(string configPath, int endpoints = 1)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { Path.Combine(AppContext.BaseDirectory, "sombra.dll"), "serve", "--config", configPath })
            start.ArgumentList.Add(argument);
        var relay = new RelayProcess(Process.Start(start)!);
        relay._process.OutputDataReceived += (_, e) => relay.Append(e.Data);
        relay._process.ErrorDataReceived += (_, e) => relay.Append(e.Data);
        relay._process.BeginOutputReadLine();
        relay._process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (relay.Ports.Count < endpoints)
        {
            if (relay._process.HasExited)
                throw new InvalidOperationException("sombra serve exited early:\n" + relay.Output);
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("sombra serve did not start listening:\n" + relay.Output);
            relay.Ports.Clear();
            relay.Ports.AddRange(Listening().Matches(relay.Output).Select(m => int.Parse(m.Groups[1].Value)));
            await Task.Delay(50);
        }
        return relay;
    }

    [GeneratedRegex(@"listening on [^ ]+:(\d+) ")]
    private static partial Regex Listening();

    private void Append(string? line)
    {
        if (line is null)
            return;
        lock (_lock)
            _output.AppendLine(line);
    }

    public async Task WaitForOutputAsync(string fragment, int timeoutSeconds = 30)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(timeoutSeconds);
        while (!Output.Contains(fragment))
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"'{fragment}' did not appear:\n{Output}");
            await Task.Delay(50);
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    /// <summary>Sends SIGTERM and returns the exit code.</summary>
    public async Task<int> TerminateAsync(int timeoutSeconds = 45)
    {
        Assert.Equal(0, kill(_process.Id, 15));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(timeoutSeconds));
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    /// <summary>SIGKILL: no chance to flush, close or clean anything.</summary>
    public async Task KillAsync()
    {
        _process.Kill();
        await _process.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
            await KillAsync();
        _process.Dispose();
    }
}
