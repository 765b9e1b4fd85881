using System.Text;
using Sombra.Queue;
using Sombra.Tests.Support;
using Xunit;

namespace Sombra.Tests.Delivery;

public sealed class FailureTests
{
    [Fact]
    public async Task Retries_follow_the_delays_until_the_lifetime_then_a_DSN_goes_to_the_notify_address()
    {
        var ct = TestContext.Current.CancellationToken;
        using var sink = new AiosmtpdSink();
        await using var relay = Relay.ToSink(sink, o =>
        {
            o.Delivery.RetryDelays = [TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(5)];
            o.Delivery.MaxQueueLifetime = TimeSpan.FromMinutes(12);
        }, fakeClock: true);
        await relay.StartAsync();
        var start = relay.Now;

        var id = await relay.SubmitAsync("Subject: doomed\r\nX-Kept: scrubbed header\r\n\r\nbody\r\n",
            ["defer@far.test"], notify: "ops@notify.test", sender: "anonymous@relay.test");

        // Attempts at 0, +1m, +6m, +11m (5m again: the last delay repeats), +12m (the deadline).
        var expected = new[] { 1, 6, 11, 12 };
        var message = await relay.WaitAsync(id, m => m!.Recipients[0].Attempts == 1);
        foreach (var minute in expected)
        {
            Assert.Equal(start.AddMinutes(minute), message!.Recipients[0].NextAttempt);
            relay.Advance(start.AddMinutes(minute) - relay.Now);
            var attempts = message.Recipients[0].Attempts + 1;
            message = await relay.WaitAsync(id, m => m is null || m.Recipients[0].Attempts == attempts);
            if (message is null)
                break;
        }
        // The last attempt is recorded before the report is queued and the message removed.
        Assert.Null(await relay.WaitAsync(id, m => m is null));

        var dsn = Assert.Single(await sink.WaitForAsync(1));
        Assert.Equal("<>", dsn.MailFrom);
        Assert.Equal(["ops@notify.test"], dsn.Recipients);
        var text = Encoding.UTF8.GetString(dsn.Content);
        Assert.Contains("multipart/report", text);
        Assert.Contains("report-type=delivery-status", text);
        Assert.Contains("Final-Recipient: rfc822; defer@far.test", text);
        Assert.Contains("Action: failed", text);
        // RFC 3463's "delivery time expired", and the next hop's own last reply beside it.
        Assert.Contains("Status: 5.4.7", text);
        Assert.Matches(@"Diagnostic-Code: smtp; 4\d\d 4\.", text);
        Assert.Contains("X-Kept: scrubbed header", text);
        Assert.Contains("Date: ", text);
        // The machine's name as a word (a short name could occur inside a random boundary).
        Assert.DoesNotMatch(@"(?<![\w=+/.-])" + System.Text.RegularExpressions.Regex.Escape(System.Net.Dns.GetHostName())
            + @"(?![\w=+/-])", text);
    }

    [Fact]
    public async Task Without_a_notify_address_a_failure_is_only_recorded()
    {
        using var sink = new AiosmtpdSink();
        await using var relay = Relay.ToSink(sink);
        await relay.StartAsync();
        var id = await relay.SubmitAsync("Subject: x\r\n\r\nx\r\n", ["reject@far.test"], notify: null);
        await relay.WaitAsync(id, m => m is null);
        await Task.Delay(300, TestContext.Current.CancellationToken);
        Assert.Empty(sink.Messages());
    }

    [Fact]
    public async Task A_report_that_fails_is_not_reported_again()
    {
        using var sink = new AiosmtpdSink();
        await using var relay = Relay.ToSink(sink);
        await relay.StartAsync();
        // The notify address itself is refused: its report has no notify address and simply ends.
        var id = await relay.SubmitAsync("Subject: x\r\n\r\nx\r\n", ["reject1@far.test"], notify: "reject2@notify.test");
        await relay.WaitAsync(id, m => m is null);
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while ((await relay.Store.ListAsync(TestContext.Current.CancellationToken)).Count > 0 && DateTime.UtcNow < deadline)
            await Task.Delay(50, TestContext.Current.CancellationToken);
        Assert.Empty(await relay.Store.ListAsync(TestContext.Current.CancellationToken));
        Assert.Empty(sink.Messages());
    }

    [Fact]
    public async Task Delivery_Directory_writes_eml_files_instead_of_sending()
    {
        var folder = Path.Combine(Path.GetTempPath(), "sombra-outbox-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using var relay = new Relay(o => o.Delivery.Directory = folder);
            await relay.StartAsync();
            var id = await relay.SubmitAsync("Subject: quick start\r\n\r\nhello\r\n", ["a@one.test", "b@two.test"]);
            await relay.WaitAsync(id, m => m is null);
            var text = await File.ReadAllTextAsync(Path.Combine(folder, id + ".eml"), TestContext.Current.CancellationToken);
            Assert.StartsWith("Received: from relay.test", text);
            Assert.EndsWith("Subject: quick start\r\n\r\nhello\r\n", text);
            Assert.Single(Directory.GetFiles(folder));
        }
        finally
        {
            if (Directory.Exists(folder))
                Directory.Delete(folder, recursive: true);
        }
    }
}
