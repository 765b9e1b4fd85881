using System.Text;
using System.Text.RegularExpressions;
using Sombra.Tests.Support;

namespace Sombra.Tests.Submission;

/// <summary>Protocol edge cases: send these bytes, expect a reply starting so.</summary>
public sealed partial class DialogTests : IAsyncLifetime
{
    private readonly CapturingStages _stages = new();
    private TestRelay _relay = null!;

    public async ValueTask InitializeAsync() =>
        _relay = await TestRelay.StartAsync(o =>
            {
                o.Submission.TrustedNetworks.Add("127.0.0.1/32");
                o.Submission.MaxMessageSize = 10_000;
                o.Submission.MaxRecipients = 3;
                o.Submission.MaxBadCommands = 4;
            },
            services => CapturingStages.Register(services, _stages));

    public async ValueTask DisposeAsync() => await _relay.DisposeAsync();

    private async Task<SmtpDialog> OpenAsync(string helo = "EHLO client.example")
    {
        var dialog = await SmtpDialog.ConnectAsync(_relay.PlainPort);
        Assert.StartsWith("250", await dialog.CommandAsync(helo));
        return dialog;
    }

    [GeneratedRegex(@"^\d{3}[ -][245]\.\d{1,3}\.\d{1,3} ")]
    private static partial Regex EnhancedCode();

    [Fact]
    public async Task GreetingAndEhloNameNoSoftware()
    {
        await using var dialog = await SmtpDialog.ConnectAsync(_relay.PlainPort);
        Assert.Equal("220 relay.test ESMTP ready", dialog.Greeting);
        var ehlo = await dialog.CommandAsync("EHLO client.example");
        Assert.DoesNotContain("sombra", ehlo, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotMatch(@"\d+\.\d+\.\d+", ehlo.Replace("10000", ""));
        foreach (var keyword in new[] { "PIPELINING", "SIZE 10000", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES" })
            Assert.Contains("250-" + keyword, ehlo.Replace("250 ", "250-"));
        Assert.DoesNotContain("STARTTLS", ehlo); // a plain endpoint
        Assert.DoesNotContain("AUTH", ehlo);     // never without TLS
    }

    [Fact]
    public async Task TransactionHandsOnExactUnstuffedBytes()
    {
        await using var dialog = await OpenAsync();
        Assert.StartsWith("250 2.1.0", await dialog.CommandAsync("MAIL FROM:<a@client.example>"));
        Assert.StartsWith("250 2.1.5", await dialog.CommandAsync("RCPT TO:<b@example.org>"));
        Assert.StartsWith("354", await dialog.CommandAsync("DATA"));
        await dialog.SendAsync("..leading dot\r\nSubject: x\r\n\r\n.\r\n");
        Assert.StartsWith("250 2.0.0", await dialog.ReadReplyAsync());
        var (body, envelope, facts) = Assert.Single(_stages.Committed);
        Assert.Equal(".leading dot\r\nSubject: x\r\n\r\n", Encoding.ASCII.GetString(body));
        Assert.Equal(["b@example.org"], envelope.Recipients);
        Assert.Equal("ESMTP", facts.Protocol);
    }

    [Fact]
    public async Task EmptyMessageIsAccepted()
    {
        await using var dialog = await OpenAsync();
        await dialog.SendAsync("MAIL FROM:<>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
        Assert.StartsWith("250", await dialog.ReadReplyAsync());
        Assert.StartsWith("250", await dialog.ReadReplyAsync());
        Assert.StartsWith("354", await dialog.ReadReplyAsync());
        await dialog.SendAsync(".\r\n");
        Assert.StartsWith("250 2.0.0", await dialog.ReadReplyAsync());
        Assert.Empty(Assert.Single(_stages.Committed).Body);
    }

    [Theory]
    [InlineData("Subject: x\r\n\r\nhello\n.\nMAIL FROM:<evil@x>\r\n.\r\n")]
    [InlineData("Subject: x\r\n\r\nhello\r\n.\nRCPT TO:<evil@x>\r\n.\r\n")]
    [InlineData("Subject: x\r\n\r\nhello\r.\r\nRCPT TO:<evil@x>\r\n.\r\n")]
    [InlineData("Subject: x\r\n\r\nnul\0here\r\n.\r\n")]
    public async Task SmugglingIsRefusedAfterTheRealTerminatorAndTheSessionGoesOn(string data)
    {
        await using var dialog = await OpenAsync();
        await dialog.CommandAsync("MAIL FROM:<a@client.example>");
        await dialog.CommandAsync("RCPT TO:<b@example.org>");
        Assert.StartsWith("354", await dialog.CommandAsync("DATA"));
        await dialog.SendAsync(data);
        Assert.StartsWith("550 5.5.2", await dialog.ReadReplyAsync());
        Assert.StartsWith("250 2.0.0", await dialog.CommandAsync("NOOP"));
        Assert.Empty(_stages.Committed);
    }

    [Fact]
    public async Task OversizeDataIsReadToTheEndAndNotParsedAsCommands()
    {
        await using var dialog = await OpenAsync();
        await dialog.CommandAsync("MAIL FROM:<a@client.example>");
        await dialog.CommandAsync("RCPT TO:<b@example.org>");
        await dialog.CommandAsync("DATA");
        var big = string.Concat(Enumerable.Repeat("QUIT\r\n", 3000));
        await dialog.SendAsync(big + ".\r\n");
        Assert.StartsWith("552 5.3.4", await dialog.ReadReplyAsync());
        Assert.StartsWith("250", await dialog.CommandAsync("NOOP"));
        Assert.Empty(_stages.Committed);
    }

    [Fact]
    public async Task SizeParameterOverTheLimitIsRefusedAtMail()
    {
        await using var dialog = await OpenAsync();
        Assert.StartsWith("552 5.3.4", await dialog.CommandAsync("MAIL FROM:<a@client.example> SIZE=10001"));
        Assert.StartsWith("250", await dialog.CommandAsync("MAIL FROM:<a@client.example> SIZE=100 BODY=8BITMIME"));
    }

    [Fact]
    public async Task LongCommandLineIsRefusedAndForgotten()
    {
        await using var dialog = await OpenAsync();
        Assert.StartsWith("500 5.5.2", await dialog.CommandAsync("NOOP " + new string('x', 600)));
        Assert.StartsWith("500 5.5.2", await dialog.CommandAsync("MAIL FROM:<a@b.example> " + new string('x', 5000)));
        Assert.StartsWith("250", await dialog.CommandAsync("NOOP"));
    }

    [Fact]
    public async Task CommandLineLimitsCountTheCrLf()
    {
        // RFC 5321 section 4.5.3.1.4: 512 octets with the CRLF; 2048 for MAIL and RCPT.
        await using var dialog = await OpenAsync();
        Assert.StartsWith("250", await dialog.CommandAsync("NOOP " + new string('x', 505)));
        Assert.StartsWith("500 5.5.2", await dialog.CommandAsync("NOOP " + new string('x', 506)));
        var mail = "MAIL FROM:<a@b.example>";
        Assert.StartsWith("500 5.5.2", await dialog.CommandAsync(mail.PadRight(2047)));
        Assert.StartsWith("250 2.1.0", await dialog.CommandAsync(mail.PadRight(2046)));
    }

    [Fact]
    public async Task BareLfDoesNotEndACommand()
    {
        await using var dialog = await OpenAsync();
        Assert.StartsWith("500 5.5.2", await dialog.CommandAsync("NOOP\nQUIT"));
        Assert.StartsWith("250", await dialog.CommandAsync("NOOP"));
    }

    [Fact]
    public async Task SequenceErrorsAndUnknownCommands()
    {
        await using var dialog = await SmtpDialog.ConnectAsync(_relay.PlainPort);
        Assert.StartsWith("503 5.5.1", await dialog.CommandAsync("MAIL FROM:<a@b.example>"));
        Assert.StartsWith("501 5.5.4", await dialog.CommandAsync("EHLO"));
        Assert.StartsWith("250", await dialog.CommandAsync("HELO client"));
        Assert.StartsWith("503 5.5.1", await dialog.CommandAsync("RCPT TO:<b@example.org>"));
        Assert.StartsWith("503 5.5.1", await dialog.CommandAsync("DATA"));
        Assert.StartsWith("252 2.5.0", await dialog.CommandAsync("VRFY someone"));
        Assert.StartsWith("214 2.0.0", await dialog.CommandAsync("HELP"));
        Assert.StartsWith("250 2.0.0", await dialog.CommandAsync("RSET"));
        Assert.StartsWith("500 5.5.1", await dialog.CommandAsync("FROB"));
        Assert.StartsWith("221 2.0.0", await dialog.CommandAsync("QUIT"));
        Assert.True(await dialog.ClosedAsync());
    }

    [Fact]
    public async Task RoutingAddressesAreRefused()
    {
        await using var dialog = await OpenAsync();
        Assert.StartsWith("553 5.1.0", await dialog.CommandAsync("MAIL FROM:<@hop.example:a@b.example>"));
        Assert.StartsWith("250", await dialog.CommandAsync("MAIL FROM:<a@b.example>"));
        Assert.StartsWith("553 5.1.3", await dialog.CommandAsync("RCPT TO:<a%c@b.example>"));
        Assert.StartsWith("553 5.1.3", await dialog.CommandAsync("RCPT TO:<a!c@b.example>"));
        Assert.StartsWith("250", await dialog.CommandAsync("NOOP")); // the bad-command count starts over
        Assert.StartsWith("553 5.1.3", await dialog.CommandAsync("RCPT TO:<\"a@c\"@b.example>"));
        Assert.StartsWith("553 5.6.7", await dialog.CommandAsync("RCPT TO:<jösé@b.example>"));
    }

    [Fact]
    public async Task InvalidUtf8IsRefusedAndValidUtf8Accepted()
    {
        await using var dialog = await OpenAsync();
        Assert.StartsWith("250", await dialog.CommandAsync("MAIL FROM:<a@b.example> SMTPUTF8"));
        await dialog.SendAsync([.. "RCPT TO:<j"u8, 0xc3, .. "se@example.org>\r\n"u8]); // truncated sequence
        Assert.StartsWith("553 5.6.7", await dialog.ReadReplyAsync());
        // A surrogate, which UTF-8 never encodes.
        await dialog.SendAsync([.. "RCPT TO:<j"u8, 0xed, 0xa0, 0x80, .. "@example.org>\r\n"u8]);
        Assert.StartsWith("553 5.6.7", await dialog.ReadReplyAsync());
        Assert.StartsWith("250 2.1.5", await dialog.CommandAsync("RCPT TO:<jösé@example.org>"));
        await dialog.SendAsync([.. "NOOP "u8, 0xff, .. "\r\n"u8]);
        Assert.StartsWith("500 5.5.2", await dialog.ReadReplyAsync());
        Assert.StartsWith("250", await dialog.CommandAsync("NOOP"));
    }

    [Fact]
    public async Task TooManyRecipients()
    {
        await using var dialog = await OpenAsync();
        await dialog.CommandAsync("MAIL FROM:<a@b.example>");
        for (var i = 0; i < 3; i++)
            Assert.StartsWith("250", await dialog.CommandAsync($"RCPT TO:<r{i}@example.org>"));
        Assert.StartsWith("452 4.5.3", await dialog.CommandAsync("RCPT TO:<r4@example.org>"));
    }

    [Fact]
    public async Task RepeatedBadCommandsCloseTheConnection()
    {
        await using var dialog = await OpenAsync();
        for (var i = 0; i < 3; i++)
            Assert.StartsWith("500", await dialog.CommandAsync("BAD"));
        var last = await dialog.CommandAsync("BAD");
        Assert.Contains("421 4.7.0", last);
        Assert.True(await dialog.ClosedAsync());
    }

    [Fact]
    public async Task PipelinedTransactionIsAnsweredInOrder()
    {
        await using var dialog = await OpenAsync();
        await dialog.SendAsync("RSET\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@example.org>\r\n" +
            "RCPT TO:<bad>\r\nRCPT TO:<d@example.org>\r\nDATA\r\n");
        string[] expected = ["250 2.0.0", "250 2.1.0", "250 2.1.5", "501 5.1.3", "250 2.1.5", "354"];
        foreach (var code in expected)
            Assert.StartsWith(code, await dialog.ReadReplyAsync());
        await dialog.SendAsync("Subject: p\r\n\r\nbody\r\n.\r\nQUIT\r\n");
        Assert.StartsWith("250 2.0.0", await dialog.ReadReplyAsync());
        Assert.StartsWith("221", await dialog.ReadReplyAsync());
        Assert.Equal(["c@example.org", "d@example.org"], Assert.Single(_stages.Committed).Envelope.Recipients);
    }

    [Fact]
    public async Task StorageFailureIs451AndTheSessionGoesOn()
    {
        _stages.FailCommits = true;
        await using var dialog = await OpenAsync();
        await dialog.SendAsync("MAIL FROM:<a@b.example>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n");
        for (var i = 0; i < 3; i++)
            await dialog.ReadReplyAsync();
        await dialog.SendAsync("Subject: s\r\n\r\nx\r\n.\r\n");
        Assert.StartsWith("451 4.3.0", await dialog.ReadReplyAsync());
        Assert.StartsWith("250", await dialog.CommandAsync("NOOP"));
        Assert.DoesNotContain("No space left", _relay.Logs.All);
    }

    [Fact]
    public async Task ScrubRefusalIs554()
    {
        _stages.Refuse = "nesting too deep";
        await using var dialog = await OpenAsync();
        await dialog.SendAsync("MAIL FROM:<a@b.example>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n");
        for (var i = 0; i < 3; i++)
            await dialog.ReadReplyAsync();
        await dialog.SendAsync("Subject: s\r\n\r\nx\r\n.\r\n");
        Assert.Equal("554 5.6.0 nesting too deep", await dialog.ReadReplyAsync());
    }

    [Fact]
    public async Task EveryReplyAfterTheGreetingCarriesAnEnhancedCode()
    {
        await using var dialog = await OpenAsync();
        string[] commands = ["NOOP", "RSET", "VRFY x", "HELP", "MAIL FROM:<a@b.example>", "RCPT TO:<c@example.org>",
            "MAIL FROM:<x@y.example>", "FROB", "AUTH PLAIN", "STARTTLS", "EXPN list", "RCPT TO:<@a:b@c.example>"];
        foreach (var command in commands.SelectMany(c => new[] { c, "NOOP" }))
        {
            var reply = await dialog.CommandAsync(command);
            Assert.Matches(EnhancedCode(), reply);
            Assert.Equal(reply[0], reply[4]); // RFC 2034 section 4: the classes agree
        }

        // 3xx replies carry none (RFC 2034 section 4 leaves them out).
        await dialog.CommandAsync("RSET");
        await dialog.CommandAsync("MAIL FROM:<a@b.example>");
        await dialog.CommandAsync("RCPT TO:<c@example.org>");
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await dialog.CommandAsync("DATA"));
        Assert.Matches(EnhancedCode(), await dialog.CommandAsync("Subject: x\r\n\r\nx\r\n."));
    }
}
