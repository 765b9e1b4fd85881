using Sombra.Hosting;
using Sombra.Tests.Support;

namespace Sombra.Tests.EndToEnd;

/// <summary>
/// Anonymity:Disclosure through the real server, anonymizer, queue and delivery: in block mode a
/// header says the message was anonymized and names Abuse:Contact; mask mode never adds it.
/// </summary>
public sealed class DisclosureTests
{
    private static async Task<string> RelayOneAsync(Action<SombraOptions> configure)
    {
        var outbox = TempDirectory.Create("outbox");
        await using var relay = await TestRelay.StartAsync(o =>
        {
            o.Submission.TrustedNetworks.Add("127.0.0.0/8");
            o.Delivery.Directory = outbox;
            o.Abuse.Contact = "abuse@relay.test";
            configure(o);
        });
        await using (var dialog = await SmtpDialog.ConnectAsync(relay.PlainPort))
        {
            await dialog.CommandAsync("EHLO c");
            await dialog.CommandAsync("MAIL FROM:<a@client.example>");
            await dialog.CommandAsync("RCPT TO:<r@example.org>");
            await dialog.CommandAsync("DATA");
            await dialog.SendAsync("From: A <a@client.example>\r\nSubject: hello\r\n\r\nbody\r\n.\r\n");
            Assert.StartsWith("250", await dialog.ReadReplyAsync());
        }
        for (var i = 0; i < 300; i++)
        {
            var file = Directory.GetFiles(outbox, "*.eml").SingleOrDefault();
            if (file is not null)
                return await File.ReadAllTextAsync(file);
            await Task.Delay(50);
        }
        throw new TimeoutException("nothing was delivered");
    }

    private static string Headers(string message) => message[..message.IndexOf("\r\n\r\n", StringComparison.Ordinal)];

    [Fact]
    public async Task BlockModeDisclosureNamesTheAbuseContact()
    {
        var headers = Headers(await RelayOneAsync(o => o.Anonymity.Disclosure = true));
        var comment = Assert.Single(headers.Split("\r\n"), h => h.StartsWith("Comments:"));
        Assert.Contains("anonymized", comment);
        Assert.Contains("abuse@relay.test", headers.Replace("\r\n ", " "));
    }

    [Fact]
    public async Task WithoutDisclosureNothingIsAdded()
    {
        var headers = Headers(await RelayOneAsync(_ => { }));
        Assert.DoesNotContain("Comments:", headers);
        Assert.DoesNotContain("abuse@", headers);
    }

    [Fact]
    public async Task MaskModeNeverRevealsAnonymizationEvenWithDisclosureOn()
    {
        var message = await RelayOneAsync(o =>
        {
            o.Anonymity.Mode = "mask";
            o.Anonymity.Disclosure = true;
            o.Anonymity.SenderAddress = "maria.lopez@relay.test";
        });
        Assert.Contains("From: maria.lopez@relay.test", message);
        Assert.DoesNotContain("Comments:", message);
        Assert.DoesNotContain("anonymi", message, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("abuse@", message);
    }
}
