using Xunit;
using System.Net;
using System.Text;
using Sombra.Anonymity;
using Sombra.Queue;
using Sombra.Tests.Support;

namespace Sombra.Tests.Delivery;

public sealed class SmarthostDeliveryTests
{
    private const string Body =
        "From: Anonymous <anonymous@relay.test>\r\n" +
        "To: a@one.test\r\n" +
        "Subject:  folded\r\n\tsubject \r\n" +
        "X-Odd:value\r\n" +
        "\r\n" +
        "line one\r\n" +
        ".starts with a dot\r\n" +
        "..two dots\r\n" +
        ".\r\n" +
        "last line\r\n";

    [Fact]
    public async Task Delivers_the_stored_bytes_behind_the_release_headers()
    {
        using var sink = new AiosmtpdSink();
        await using var relay = Relay.ToSink(sink, fakeClock: true);
        await relay.StartAsync();
        var releasedAt = relay.Now;

        var id = await relay.SubmitAsync(Body, ["a@one.test", "b@two.test"]);
        var received = Assert.Single(await sink.WaitForAsync(1));

        var expected = ReleaseStamp.Headers(["from relay.test by relay.test with ESMTPSA id test"], releasedAt,
            relay.Options.Anonymity.DatePrecision) + Body;
        Assert.Equal(expected, Encoding.UTF8.GetString(received.Content));
        Assert.Equal("anonymous@relay.test", received.MailFrom);
        Assert.Equal(["a@one.test", "b@two.test"], received.Recipients);
        Assert.Equal("relay.test", received.Helo);
        Assert.DoesNotContain(Dns.GetHostName(), received.Helo);

        await relay.WaitAsync(id, m => m is null);
    }

    [Fact]
    public async Task Tracks_each_recipient_on_its_own()
    {
        using var sink = new AiosmtpdSink();
        await using var relay = Relay.ToSink(sink, fakeClock: true);
        await relay.StartAsync();

        var id = await relay.SubmitAsync(Body, ["ok@one.test", "reject@one.test", "defer@two.test"]);
        var message = await relay.WaitAsync(id, m => m!.Recipients.All(r => r.Attempts == 1));

        var byAddress = message!.Recipients.ToDictionary(r => r.Address);
        Assert.Equal(RecipientState.Delivered, byAddress["ok@one.test"].State);
        Assert.Equal(RecipientState.Failed, byAddress["reject@one.test"].State);
        Assert.StartsWith("550", byAddress["reject@one.test"].LastError);
        Assert.Equal(RecipientState.Pending, byAddress["defer@two.test"].State);
        Assert.StartsWith("451", byAddress["defer@two.test"].LastError);
        Assert.Equal(relay.Now + TimeSpan.FromMinutes(1), byAddress["defer@two.test"].NextAttempt);
        Assert.Equal(["ok@one.test"], Assert.Single(sink.Messages()).Recipients);
    }

    [Fact]
    public async Task A_451_at_data_is_retried_after_the_first_delay_and_then_delivered()
    {
        using var sink = new AiosmtpdSink("--data-fail", "1");
        await using var relay = Relay.ToSink(sink, fakeClock: true);
        await relay.StartAsync();

        var id = await relay.SubmitAsync(Body, ["a@one.test"]);
        var deferred = await relay.WaitAsync(id, m => m!.Recipients[0].Attempts == 1);
        Assert.Equal(RecipientState.Pending, deferred!.Recipients[0].State);
        Assert.Empty(sink.Messages());

        // Not yet due: nothing happens short of the first retry delay.
        relay.Advance(TimeSpan.FromSeconds(59));
        await Task.Delay(300, TestContext.Current.CancellationToken);
        Assert.Equal(1, (await relay.Store.GetAsync(id, TestContext.Current.CancellationToken))!.Recipients[0].Attempts);

        relay.Advance(TimeSpan.FromSeconds(1));
        Assert.Single(await sink.WaitForAsync(1));
        await relay.WaitAsync(id, m => m is null);
    }

    [Fact]
    public async Task A_body_with_a_bare_LF_is_refused_before_sending()
    {
        using var sink = new AiosmtpdSink();
        await using var relay = Relay.ToSink(sink);
        await relay.StartAsync();

        var id = await relay.SubmitAsync("Subject: x\r\n\r\nhello\n.\r\nMAIL FROM:<evil@x>\r\n", ["a@one.test"],
            notify: null);
        await relay.WaitAsync(id, m => m is null);
        Assert.Empty(sink.Messages());
    }

    [Fact]
    public async Task Eight_bit_content_needs_8BITMIME_at_the_next_hop()
    {
        using var with = new AiosmtpdSink();
        await using (var relay = Relay.ToSink(with))
        {
            await relay.StartAsync();
            await relay.SubmitAsync("Subject: x\r\n\r\ncaf\u00e9\r\n", ["a@one.test"], eightBit: true);
            var received = Assert.Single(await with.WaitForAsync(1));
            Assert.Contains("BODY=8BITMIME", received.Options);
            Assert.EndsWith("caf\u00e9\r\n", Encoding.UTF8.GetString(received.Content));
        }

        using var without = new AiosmtpdSink("--no-8bitmime");
        await using (var relay = Relay.ToSink(without, fakeClock: true))
        {
            await relay.StartAsync();
            var id = await relay.SubmitAsync("Subject: x\r\n\r\ncaf\u00e9\r\n", ["a@one.test", "b@one.test"],
                notify: "ops@notify.test", eightBit: true);
            // Nothing of the message arrives; only the report, which is 7bit, to the notify address.
            var dsn = Assert.Single(await without.WaitForAsync(1));
            Assert.Equal("<>", dsn.MailFrom); // aiosmtpd shows the null sender as <>
            Assert.Equal(["ops@notify.test"], dsn.Recipients);
            var text = Encoding.UTF8.GetString(dsn.Content);
            Assert.Contains("Status: 5.6.3", text);
            Assert.DoesNotContain("caf", text);
            await relay.WaitAsync(id, m => m is null);
        }
    }

    [Fact]
    public async Task UTF8_headers_need_SMTPUTF8_at_the_next_hop()
    {
        const string utf8 = "Subject: gr\u00fc\u00dfe\r\n\r\nhi\r\n";
        using var with = new AiosmtpdSink();
        await using (var relay = Relay.ToSink(with))
        {
            await relay.StartAsync();
            await relay.SubmitAsync(utf8, ["a@one.test"], eightBit: true, utf8: true);
            var received = Assert.Single(await with.WaitForAsync(1));
            Assert.Contains("SMTPUTF8", received.Options);
            Assert.Equal("anonymous@relay.test", received.MailFrom);
            Assert.EndsWith(utf8, Encoding.UTF8.GetString(received.Content));
        }

        using var without = new AiosmtpdSink("--no-smtputf8");
        await using (var relay = Relay.ToSink(without, fakeClock: true))
        {
            await relay.StartAsync();
            await relay.SubmitAsync(utf8, ["a@one.test"], notify: "ops@notify.test", eightBit: true, utf8: true);
            var dsn = Assert.Single(await without.WaitForAsync(1));
            Assert.Equal(["ops@notify.test"], dsn.Recipients);
            Assert.Contains("Status: 5.6.7", Encoding.UTF8.GetString(dsn.Content));
        }
    }

    [Fact]
    public async Task A_large_body_streams_from_its_file_unchanged()
    {
        using var sink = new AiosmtpdSink();
        await using var relay = Relay.ToSink(sink);
        await relay.StartAsync();
        var body = new StringBuilder("Subject: big\r\n\r\n");
        for (var i = 0; body.Length < 3 * 1024 * 1024; i++)
            body.Append(i % 7 == 0 ? "." : "").Append("line ").Append(i).Append(" of a long message\r\n");

        await relay.SubmitAsync(body.ToString(), ["a@one.test"]);
        var received = Assert.Single(await sink.WaitForAsync(1, seconds: 30));
        Assert.EndsWith(body.ToString(), Encoding.UTF8.GetString(received.Content));
    }

    [Fact]
    public async Task Several_messages_to_one_destination_arrive()
    {
        using var sink = new AiosmtpdSink();
        await using var relay = Relay.ToSink(sink, o => o.Delivery.MaxConnectionsPerDestination = 2);
        await relay.StartAsync();
        for (var i = 0; i < 20; i++)
            await relay.SubmitAsync($"Subject: {i}\r\n\r\nbody {i}\r\n", ["a@one.test"]);
        Assert.Equal(20, (await sink.WaitForAsync(20)).Count);
    }
}
