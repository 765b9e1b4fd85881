using System.Diagnostics;
using System.Text.Json;

namespace Sombra.Tests.Support;

/// <summary>A scriptable next hop: Support/smtp_sink.py (aiosmtpd) on an ephemeral 127.0.0.1 port.</summary>
public sealed class AiosmtpdSink : IDisposable
{
    private readonly Process _process;

    public string Directory { get; }
    public int Port { get; }

    public AiosmtpdSink(params string[] flags)
    {
        Directory = Path.Combine(Path.GetTempPath(), "sombra-sink-" + Guid.NewGuid().ToString("N"));
        var script = Path.Combine(AppContext.BaseDirectory, "Support", "smtp_sink.py");
        var start = new ProcessStartInfo("/usr/bin/python3")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(script);
        start.ArgumentList.Add(Directory);
        foreach (var flag in flags)
            start.ArgumentList.Add(flag);
        _process = Process.Start(start)!;
        var line = _process.StandardOutput.ReadLine()
            ?? throw new InvalidOperationException("smtp_sink.py did not start: " + _process.StandardError.ReadToEnd());
        Port = int.Parse(line["PORT ".Length..]);
    }

    /// <param name="At">When the sink finished receiving it (its envelope file's time).</param>
    /// <param name="Tls">Whether it came over TLS.</param>
    public sealed record Received(byte[] Content, string MailFrom, List<string> Recipients, List<string> Options,
        string Helo, DateTimeOffset At = default, bool Tls = false);

    /// <summary>Connections the sink has seen in all, and the most that were open at once.</summary>
    public (int Total, int MaxConcurrent) Connections()
    {
        var path = Path.Combine(Directory, "connections.json");
        if (!File.Exists(path))
            return (0, 0);
        using var counts = JsonDocument.Parse(File.ReadAllText(path));
        return (counts.RootElement.GetProperty("total").GetInt32(),
            counts.RootElement.GetProperty("max_concurrent").GetInt32());
    }

    public List<Received> Messages()
    {
        if (!System.IO.Directory.Exists(Directory))
            return [];
        return System.IO.Directory.GetFiles(Directory, "*.json")
            .Where(f => int.TryParse(Path.GetFileNameWithoutExtension(f), out _))
            .OrderBy(f => int.Parse(Path.GetFileNameWithoutExtension(f)))
            .Select(f =>
            {
                using var meta = JsonDocument.Parse(File.ReadAllText(f));
                var root = meta.RootElement;
                return new Received(
                    File.ReadAllBytes(Path.ChangeExtension(f, ".eml")),
                    root.GetProperty("mail_from").GetString()!,
                    root.GetProperty("rcpt_tos").EnumerateArray().Select(e => e.GetString()!).ToList(),
                    root.GetProperty("mail_options").EnumerateArray().Select(e => e.GetString()!).ToList(),
                    root.GetProperty("helo").GetString() ?? "",
                    new DateTimeOffset(File.GetLastWriteTimeUtc(f), TimeSpan.Zero),
                    root.GetProperty("tls").GetBoolean());
            }).ToList();
    }

    /// <summary>Waits (polling, at most <paramref name="seconds"/>) until <paramref name="count"/> messages arrived.</summary>
    public async Task<List<Received>> WaitForAsync(int count, int seconds = 15)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            var messages = Messages();
            if (messages.Count >= count || DateTime.UtcNow > deadline)
                return messages;
            await Task.Delay(50);
        }
    }

    public void Dispose()
    {
        try
        {
            _process.Kill();
            _process.WaitForExit(5000);
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
