using System.Text.Json;
using Sombra.Tests.Support;

namespace Sombra.Tests.EndToEnd;

/// <summary>
/// Every file and directory Sombra makes is its own user's alone: other local users must not
/// read the queue, the keys or the accounts. Only a real process shows it, since the umask is
/// set where the program starts.
/// </summary>
public sealed class FileModeTests
{
    private const UnixFileMode GroupOrOther =
        UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    [Fact]
    public async Task AFreshDataDirectoryAndEverythingInItArePrivate()
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "Unix file modes");
        var data = Path.Combine(TempDirectory.Create("modes"), "data");
        var config = Path.Combine(TempDirectory.Create("modes-config"), "sombra.json");
        File.WriteAllText(config, JsonSerializer.Serialize(new
        {
            HostName = "relay.test",
            DataDirectory = data,
            Submission = new
            {
                Endpoints = new[] { new { Address = "127.0.0.1:0", Tls = "none" } },
                TrustedNetworks = new[] { "127.0.0.0/8" },
            },
            // Held, so that the queue has its database, its WAL and a body file when we look.
            Mixing = new { MinDelay = "10m", MaxDelay = "10m" },
            Delivery = new { Directory = Path.Combine(Path.GetDirectoryName(config)!, "outbox") },
        }));
        var add = await Tools.RunAsync("dotnet", [Path.Combine(AppContext.BaseDirectory, "sombra.dll"),
            "user", "add", "maria", "--config", config], input: "pass phrase\n");
        Assert.True(add.ExitCode == 0, add.Error);

        await using var relay = await RelayProcess.StartAsync(config);
        await using (var dialog = await SmtpDialog.ConnectAsync(relay.Ports[0]))
        {
            await dialog.CommandAsync("EHLO c");
            await dialog.CommandAsync("MAIL FROM:<a@client.example>");
            await dialog.CommandAsync("RCPT TO:<r@example.org>");
            await dialog.CommandAsync("DATA");
            // Larger than the inline limit, so the body goes to a file in queue/.
            var line = new string('x', 998) + "\r\n";
            await dialog.SendAsync("Subject: s\r\n\r\n" + string.Concat(Enumerable.Repeat(line, 100)) + ".\r\n");
            Assert.StartsWith("250", await dialog.ReadReplyAsync());
        }

        var entries = Directory.EnumerateFileSystemEntries(data, "*", SearchOption.AllDirectories)
            .Prepend(data).ToList();
        string[] expected = ["queue.db", "queue.db-wal", "queue.db-shm", "accounts.json", "optout.key", "tls", "queue"];
        foreach (var name in expected)
            Assert.Contains(Path.Combine(data, name), entries);
        Assert.NotEmpty(Directory.EnumerateFiles(Path.Combine(data, "queue"), "*", SearchOption.AllDirectories));
        foreach (var entry in entries)
        {
            var mode = File.GetUnixFileMode(entry);
            Assert.True((mode & GroupOrOther) == 0, $"{entry} is {mode}");
        }
        Assert.Equal(0, await relay.TerminateAsync());
    }
}
