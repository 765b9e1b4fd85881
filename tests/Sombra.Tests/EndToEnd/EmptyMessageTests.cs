using Sombra.Tests.Support;

namespace Sombra.Tests.EndToEnd;

/// <summary>
/// RFC 5321 allows an empty DATA block. Through the real anonymizer and queue it leaves as a
/// message with only the headers Sombra writes, not as a refusal.
/// </summary>
public sealed class EmptyMessageTests
{
    [Fact]
    public async Task An_empty_message_is_accepted_and_delivered_with_Sombras_own_headers()
    {
        var outbox = TempDirectory.Create("empty-outbox");
        await using var relay = await TestRelay.StartAsync(o =>
        {
            o.Submission.TrustedNetworks.Add("127.0.0.1/32");
            o.Delivery.Directory = outbox;
        });

        await using var dialog = await SmtpDialog.ConnectAsync(relay.PlainPort);
        await dialog.CommandAsync("EHLO c");
        await dialog.CommandAsync("MAIL FROM:<>");
        await dialog.CommandAsync("RCPT TO:<b@example.org>");
        Assert.StartsWith("354", await dialog.CommandAsync("DATA"));
        await dialog.SendAsync(".\r\n");
        Assert.StartsWith("250 2.0.0", await dialog.ReadReplyAsync());

        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (Directory.GetFiles(outbox, "*.eml").Length == 0 && DateTime.UtcNow < deadline)
            await Task.Delay(50);
        var text = File.ReadAllText(Assert.Single(Directory.GetFiles(outbox, "*.eml")));
        Assert.Contains("\r\nFrom: anonymous@relay.test\r\n", text);
        Assert.Contains("\r\nMessage-ID: <", text);
        Assert.StartsWith("Received: by relay.test", text);
        Assert.EndsWith("\r\n\r\n", text);
    }
}
