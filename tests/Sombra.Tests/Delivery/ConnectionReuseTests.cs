using Sombra.Tests.Support;

namespace Sombra.Tests.Delivery;

public sealed class ConnectionReuseTests
{
    [Fact]
    public async Task AConnectionTheNextHopClosedWhileIdleIsReplacedAtOnce()
    {
        var port = PostfixSink.FreePort();
        var first = new AiosmtpdSink("--port", port.ToString());
        await using var relay = await TestRelay.StartAsync(o =>
        {
            o.Submission.TrustedNetworks.Add("127.0.0.1/32");
            o.Delivery.Smarthost = $"127.0.0.1:{port}";
            o.Delivery.SmarthostTls = "none";
        });

        async Task Submit(string subject)
        {
            await using var dialog = await SmtpDialog.ConnectAsync(relay.PlainPort);
            await dialog.CommandAsync("EHLO c");
            await dialog.CommandAsync("MAIL FROM:<a@client.example>");
            await dialog.CommandAsync("RCPT TO:<r@example.org>");
            await dialog.CommandAsync("DATA");
            await dialog.SendAsync($"Subject: {subject}\r\n\r\nbody\r\n.\r\n");
            Assert.StartsWith("250", await dialog.ReadReplyAsync());
        }

        await Submit("one");
        Assert.Single(await first.WaitForAsync(1));
        // The next hop goes away and comes back: the relay's kept connection is now dead.
        first.Dispose();
        using var second = new AiosmtpdSink("--port", port.ToString());
        await Submit("two");
        // Well within the first retry delay (1 minute): it was not deferred.
        Assert.Single(await second.WaitForAsync(1, seconds: 15));
    }

    [Fact]
    public async Task Messages_to_one_destination_share_a_few_connections_within_the_limit()
    {
        using var sink = new AiosmtpdSink();
        await using var relay = Relay.ToSink(sink, o => o.Delivery.MaxConnectionsPerDestination = 2);
        for (var i = 0; i < 30; i++)
            await relay.SubmitAsync($"Subject: m{i}\r\n\r\nbody\r\n", [$"r{i}@example.org"]);
        await relay.StartAsync();

        Assert.Equal(30, (await sink.WaitForAsync(30)).Count);
        var (total, most) = sink.Connections();
        Assert.InRange(most, 1, 2);
        // Reused: 30 messages did not take 30 connections.
        Assert.InRange(total, 1, 4);
    }
}
