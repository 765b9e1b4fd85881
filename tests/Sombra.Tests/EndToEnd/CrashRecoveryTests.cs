using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;
using Sombra.Tests.Support;

namespace Sombra.Tests.EndToEnd;

/// <summary>Issue 4: after kill -9 at any moment, a restart delivers every acknowledged message.</summary>
[Collection(SerialCollection.Name)]
public sealed class CrashRecoveryTests
{
    [Fact]
    public async Task Every_acknowledged_message_arrives_after_a_SIGKILL_during_a_load()
    {
        // The next hop refuses the first transactions with 451, so that acknowledged messages are
        // still queued (and some in flight) when the relay is killed.
        using var sink = new AiosmtpdSink("--data-fail", "15");
        var data = TempDirectory.Create("crash-data");
        var config = Path.Combine(TempDirectory.Create("crash"), "sombra.json");
        File.WriteAllText(config, JsonSerializer.Serialize(new
        {
            HostName = "relay.test",
            DataDirectory = data,
            Submission = new
            {
                Endpoints = new[] { new { Address = "127.0.0.1:0", Tls = "none" } },
                TrustedNetworks = new[] { "127.0.0.1/32" },
            },
            Delivery = new { Smarthost = $"127.0.0.1:{sink.Port}", SmarthostTls = "none", RetryDelays = new[] { "1s" } },
        }));

        var acknowledged = new ConcurrentBag<string>();
        await using (var relay = await RelayProcess.StartAsync(config))
        {
            using var stop = new CancellationTokenSource();
            var port = relay.Ports[0];
            var clients = Enumerable.Range(0, 4).Select(c => Task.Run(async () =>
            {
                for (var i = 0; !stop.IsCancellationRequested; i++)
                {
                    var token = $"token-{c}-{i}";
                    try
                    {
                        using var client = new SmtpClient { LocalDomain = "client.test" };
                        await client.ConnectAsync("127.0.0.1", port, SecureSocketOptions.None);
                        var message = new MimeMessage();
                        message.From.Add(MailboxAddress.Parse("someone@client.test"));
                        message.To.Add(MailboxAddress.Parse("rcpt@far.test"));
                        message.Subject = token;
                        message.Body = new TextPart("plain") { Text = "crash test " + token };
                        await client.SendAsync(message);
                        // Only a 250 to DATA counts as acknowledged.
                        acknowledged.Add(token);
                        await client.DisconnectAsync(true);
                    }
                    catch (Exception) when (stop.IsCancellationRequested || acknowledged.Count > 0)
                    {
                        // The relay was killed mid-session: that message was never acknowledged.
                        return;
                    }
                }
            })).ToList();

            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (acknowledged.Count < 40 && DateTime.UtcNow < deadline)
                await Task.Delay(20);
            await relay.KillAsync(); // SIGKILL while the clients are still sending
            stop.Cancel();
            await Task.WhenAll(clients);
        }
        Assert.True(acknowledged.Count >= 40, $"only {acknowledged.Count} messages were acknowledged");
        // The restart has work to do: some acknowledged messages had not left when the relay died.
        var before = sink.Messages().Select(m => Subject(m.Content)).ToHashSet();
        Assert.Contains(acknowledged, t => !before.Contains(t));

        await using (var restarted = await RelayProcess.StartAsync(config))
        {
            var deadline = DateTime.UtcNow.AddSeconds(60);
            HashSet<string> arrived;
            do
            {
                await Task.Delay(200);
                arrived = sink.Messages().Select(m => Subject(m.Content)).ToHashSet();
            }
            while (!acknowledged.All(arrived.Contains) && DateTime.UtcNow < deadline);

            var missing = acknowledged.Where(t => !arrived.Contains(t)).ToList();
            Assert.True(missing.Count == 0, $"{missing.Count} of {acknowledged.Count} acknowledged messages never arrived");
            Assert.Equal(0, await restarted.TerminateAsync());
        }
    }

    private static string Subject(byte[] content)
    {
        var text = Encoding.UTF8.GetString(content);
        var start = text.IndexOf("\r\nSubject: ", StringComparison.Ordinal) + "\r\nSubject: ".Length;
        return text[start..text.IndexOf('\r', start)];
    }
}
