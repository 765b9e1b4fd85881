using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Sombra.Tests.Support;

/// <summary>
/// Postfix's smtp-sink as the next hop: a real SMTP server that accepts everything and dumps each
/// transaction (envelope as X- lines, then the message as received) into a file of its own.
/// </summary>
public sealed class PostfixSink : IAsyncDisposable
{
    private readonly Process _process;

    public int Port { get; }
    public string Directory { get; }

    private PostfixSink(Process process, int port, string directory)
    {
        _process = process;
        Port = port;
        Directory = directory;
    }

    public static async Task<PostfixSink> StartAsync()
    {
        var program = Tools.Require("/usr/sbin/smtp-sink");
        var directory = TempDirectory.Create("sink");
        // smtp-sink drops privileges to this user when run as root, and must write the dumps.
        File.SetUnixFileMode(directory, (UnixFileMode)0x1ff);
        var port = FreePort();
        var start = new ProcessStartInfo(program) { UseShellExecute = false, RedirectStandardError = true };
        if (Environment.UserName == "root")
            start.ArgumentList.Add("-u");
        if (Environment.UserName == "root")
            start.ArgumentList.Add("nobody");
        foreach (var argument in new[] { "-d", Path.Combine(directory, "%Y%m%d%H%M%S."), $"127.0.0.1:{port}", "100" })
            start.ArgumentList.Add(argument);
        var sink = new PostfixSink(Process.Start(start)!, port, directory);

        // Ready when it accepts a connection.
        for (var i = 0; i < 100; i++)
        {
            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync(IPAddress.Loopback, port);
                return sink;
            }
            catch (SocketException)
            {
                await Task.Delay(50);
            }
        }
        throw new TimeoutException("smtp-sink did not start");
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Waits until <paramref name="count"/> messages have arrived and returns them all.</summary>
    public async Task<IReadOnlyList<string>> WaitForAsync(int count, int timeoutSeconds = 60)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(timeoutSeconds);
        while (true)
        {
            var files = System.IO.Directory.GetFiles(Directory).Order().ToArray();
            // A dump is complete once smtp-sink has answered the DATA; give it a moment to close.
            // Under load the file can still be empty then: read until every one has content and
            // stays the same.
            if (files.Length >= count)
            {
                await Task.Delay(200);
                var dumps = files.Select(File.ReadAllText).ToArray();
                await Task.Delay(200);
                if (dumps.All(d => d.Length > 0) && dumps.SequenceEqual(files.Select(File.ReadAllText)))
                    return dumps;
            }
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"{files.Length} of {count} messages arrived at the sink");
            await Task.Delay(100);
        }
    }

    /// <summary>The message part of a dump: what the relay sent, without the sink's own lines.</summary>
    public static string Message(string dump)
    {
        var lines = dump.Replace("\r\n", "\n").Split('\n').ToList();
        var start = lines.FindIndex(l => !l.StartsWith("X-Client-") && !l.StartsWith("X-Helo-")
            && !l.StartsWith("X-Mail-") && !l.StartsWith("X-Rcpt-"));
        // smtp-sink adds a Received header of its own for its hop: three lines.
        var text = string.Join("\n", lines.Skip(start));
        if (text.StartsWith("Received: from ") && text.Contains("by smtp-sink"))
            text = text[(text.IndexOf("(UTC)\n", StringComparison.Ordinal) + 6)..];
        return text;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
