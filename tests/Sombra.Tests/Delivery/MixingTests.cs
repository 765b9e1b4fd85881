using System.Text;
using Sombra.Tests.Support;

namespace Sombra.Tests.Delivery;

/// <summary>
/// Issue 6: mixing through the real relay. Messages leave within the configured delays, in an
/// order that is not the order of submission, and a restart keeps held messages held.
/// </summary>
public sealed class MixingTests
{
    private static async Task<DateTimeOffset> SubmitAsync(int port, string subject)
    {
        await using var dialog = await SmtpDialog.ConnectAsync(port);
        await dialog.CommandAsync("EHLO c");
        await dialog.CommandAsync("MAIL FROM:<a@client.example>");
        await dialog.CommandAsync("RCPT TO:<r@example.org>");
        await dialog.CommandAsync("DATA");
        await dialog.SendAsync($"Subject: {subject}\r\n\r\nbody\r\n.\r\n");
        var reply = await dialog.ReadReplyAsync();
        Assert.StartsWith("250", reply);
        return DateTimeOffset.UtcNow;
    }

    private static string SubjectOf(AiosmtpdSink.Received message)
    {
        var text = Encoding.UTF8.GetString(message.Content);
        var start = text.IndexOf("Subject: ", StringComparison.Ordinal) + 9;
        return text[start..text.IndexOf('\r', start)];
    }

    private static Action<Sombra.Hosting.SombraOptions> Relaying(AiosmtpdSink sink, Action<Sombra.Hosting.SombraOptions> more) =>
        o =>
        {
            o.Submission.TrustedNetworks.Add("127.0.0.1/32");
            o.Delivery.Smarthost = $"127.0.0.1:{sink.Port}";
            o.Delivery.SmarthostTls = "none";
            more(o);
        };

    [Fact]
    public async Task RandomDelaysKeepTheirBoundsAndShuffleTheOrder()
    {
        using var sink = new AiosmtpdSink();
        await using var relay = await TestRelay.StartAsync(Relaying(sink, o =>
        {
            o.Mixing.MinDelay = TimeSpan.FromSeconds(2);
            o.Mixing.MaxDelay = TimeSpan.FromSeconds(6);
        }));

        const int count = 10;
        var submitted = new Dictionary<string, DateTimeOffset>();
        for (var i = 0; i < count; i++)
            submitted[$"m{i:00}"] = await SubmitAsync(relay.PlainPort, $"m{i:00}");

        var arrived = await sink.WaitForAsync(count, seconds: 30);
        Assert.Equal(count, arrived.Count);
        var order = arrived.Select(SubjectOf).ToList();
        Assert.NotEqual(submitted.Keys.ToList(), order);

        foreach (var message in arrived)
        {
            var subject = SubjectOf(message);
            var waited = message.At - submitted[subject];
            Assert.True(waited >= TimeSpan.FromSeconds(1.9), $"{subject} left after {waited}");
            // The upper bound plus the delivery loop's one-second poll and the hop itself.
            Assert.True(waited <= TimeSpan.FromSeconds(9), $"{subject} left after {waited}");
        }
    }

    [Fact]
    public async Task PoolReleasesAShareOfTheExcessEachRound()
    {
        using var sink = new AiosmtpdSink();
        await using var relay = await TestRelay.StartAsync(Relaying(sink, o =>
        {
            o.Mixing.Pool = true;
            o.Mixing.PoolInterval = TimeSpan.FromSeconds(3);
            o.Mixing.PoolMinSize = 2;
            o.Mixing.PoolRate = 0.5;
        }));

        for (var i = 0; i < 8; i++)
            await SubmitAsync(relay.PlainPort, $"p{i}");

        // The first round sees 8 waiting: it releases half of the excess of 6, that is 3.
        var first = await sink.WaitForAsync(1, seconds: 10);
        await Task.Delay(1000);
        var afterFirstRound = sink.Messages().Count;
        Assert.Equal(3, afterFirstRound);

        // Later rounds go on until only the minimum is left; those stay.
        await Task.Delay(TimeSpan.FromSeconds(12));
        var all = sink.Messages();
        Assert.True(all.Count is >= 5 and <= 6, $"{all.Count} left the pool");
        Assert.True(all.Count <= 8 - 2);
    }

    [Fact]
    public async Task HeldMessagesStayHeldAcrossARestart()
    {
        using var sink = new AiosmtpdSink();
        var data = TempDirectory.Create("mix-restart");
        var configure = Relaying(sink, o =>
        {
            o.DataDirectory = data;
            o.Mixing.MinDelay = TimeSpan.FromSeconds(8);
            o.Mixing.MaxDelay = TimeSpan.FromSeconds(8);
        });

        DateTimeOffset submitted;
        await using (var relay = await TestRelay.StartAsync(configure))
        {
            submitted = await SubmitAsync(relay.PlainPort, "held");
            await Task.Delay(TimeSpan.FromSeconds(4));
        }

        await using (var restarted = await TestRelay.StartAsync(configure))
        {
            var arrived = await sink.WaitForAsync(1, seconds: 20);
            var message = Assert.Single(arrived);
            // Neither released by the restart nor held for a fresh delay counted from it (which
            // would put it at 12 s or later).
            var waited = message.At - submitted;
            Assert.True(waited >= TimeSpan.FromSeconds(7.9), $"left after {waited}");
            Assert.True(waited < TimeSpan.FromSeconds(11.5), $"left after {waited}");
        }
    }

    [Fact]
    public async Task ThePoolSurvivesARestartAndItsFirstRoundWaitsAFullInterval()
    {
        using var sink = new AiosmtpdSink();
        var data = TempDirectory.Create("pool-restart");
        await using (var relay = await TestRelay.StartAsync(Relaying(sink, o =>
        {
            o.DataDirectory = data;
            o.Mixing.Pool = true;
            o.Mixing.PoolInterval = TimeSpan.FromSeconds(1);
            o.Mixing.PoolMinSize = 10;
        })))
        {
            for (var i = 0; i < 3; i++)
                await SubmitAsync(relay.PlainPort, $"kept{i}");
            // Several rounds pass; the pool is below its minimum, so nothing leaves.
            await Task.Delay(TimeSpan.FromSeconds(3));
            Assert.Empty(sink.Messages());
        }

        var started = DateTimeOffset.UtcNow;
        await using var restarted = await TestRelay.StartAsync(Relaying(sink, o =>
        {
            o.DataDirectory = data;
            o.Mixing.Pool = true;
            o.Mixing.PoolInterval = TimeSpan.FromSeconds(4);
            o.Mixing.PoolMinSize = 0;
            o.Mixing.PoolRate = 1;
        }));
        var arrived = await sink.WaitForAsync(3, seconds: 20);
        Assert.Equal(3, arrived.Count);
        Assert.All(arrived, m => Assert.True(m.At - started >= TimeSpan.FromSeconds(3.9), $"left after {m.At - started}"));
    }

    [Fact]
    public async Task PoolMaxWaitLetsTheLastMessagesGo()
    {
        using var sink = new AiosmtpdSink();
        await using var relay = await TestRelay.StartAsync(Relaying(sink, o =>
        {
            o.Mixing.Pool = true;
            o.Mixing.PoolInterval = TimeSpan.FromSeconds(1);
            o.Mixing.PoolMinSize = 5;
            o.Mixing.PoolMaxWait = TimeSpan.FromSeconds(3);
        }));
        var submitted = await SubmitAsync(relay.PlainPort, "lonely1");
        await SubmitAsync(relay.PlainPort, "lonely2");

        // Two messages never make a pool of more than five; only the maximum wait lets them go.
        var arrived = await sink.WaitForAsync(2, seconds: 15);
        Assert.Equal(2, arrived.Count);
        Assert.All(arrived, m => Assert.True(m.At - submitted >= TimeSpan.FromSeconds(2.9), $"left after {m.At - submitted}"));
    }
}
