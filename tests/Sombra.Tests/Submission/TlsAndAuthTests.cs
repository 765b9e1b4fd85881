using System.Text;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;
using Sombra.Tests.Support;

namespace Sombra.Tests.Submission;

/// <summary>STARTTLS, implicit TLS and AUTH, with raw dialogs and with real clients.</summary>
public sealed class TlsAndAuthTests : IAsyncLifetime
{
    private readonly CapturingStages _stages = new();
    private TestRelay _relay = null!;

    public async ValueTask InitializeAsync()
    {
        _relay = await TestRelay.StartAsync(services: s => CapturingStages.Register(s, _stages));
        _relay.AddAccount("alice", "correct horse battery staple");
    }

    public async ValueTask DisposeAsync() => await _relay.DisposeAsync();

    [Fact]
    public async Task StartTlsOffersAuthOnlyAfterTheHandshake()
    {
        await using var dialog = await SmtpDialog.ConnectAsync(_relay.StartTlsPort);
        var before = await dialog.CommandAsync("EHLO client.example");
        Assert.Contains("STARTTLS", before);
        Assert.DoesNotContain("AUTH", before);
        Assert.StartsWith("530 5.7.0", await dialog.CommandAsync("AUTH PLAIN AGFsaWNlAHg="));
        Assert.StartsWith("530 5.7.0", await dialog.CommandAsync("MAIL FROM:<a@b.example>"));

        Assert.StartsWith("220 2.0.0", await dialog.CommandAsync("STARTTLS"));
        await dialog.HandshakeAsync();
        var after = await dialog.CommandAsync("EHLO client.example");
        Assert.DoesNotContain("STARTTLS", after);
        Assert.Contains("AUTH PLAIN LOGIN", after);
    }

    [Fact]
    public async Task CommandsPipelinedAfterStartTlsAreDiscardedAndStateIsReset()
    {
        await using var dialog = await SmtpDialog.ConnectAsync(_relay.StartTlsPort);
        await dialog.CommandAsync("EHLO client.example");
        // The classic injection: plain-text commands behind STARTTLS in the same packet.
        await dialog.SendAsync("STARTTLS\r\nMAIL FROM:<injected@x.example>\r\n");
        Assert.StartsWith("220 2.0.0", await dialog.ReadReplyAsync());
        await dialog.HandshakeAsync();
        // Had the MAIL survived, this would be "503 nested MAIL"; had EHLO state survived, 250.
        Assert.StartsWith("503 5.5.1 Send EHLO", await dialog.CommandAsync("MAIL FROM:<a@b.example>"));
        Assert.StartsWith("250", await dialog.CommandAsync("EHLO client.example"));
    }

    [Fact]
    public async Task AuthPlainAndLogin()
    {
        await using var dialog = await SmtpDialog.ConnectAsync(_relay.ImplicitPort, implicitTls: true);
        await dialog.CommandAsync("EHLO client.example");
        var wrong = Convert.ToBase64String(Encoding.UTF8.GetBytes("\0alice\0wrong"));
        Assert.StartsWith("535 5.7.8", await dialog.CommandAsync("AUTH PLAIN " + wrong));
        Assert.StartsWith("504 5.5.4", await dialog.CommandAsync("AUTH CRAM-MD5"));
        Assert.StartsWith("334 VXNlcm5hbWU6", await dialog.CommandAsync("AUTH LOGIN"));
        Assert.StartsWith("501 5.0.0", await dialog.CommandAsync("*"));
        Assert.StartsWith("334", await dialog.CommandAsync("AUTH LOGIN"));
        Assert.StartsWith("334 UGFzc3dvcmQ6", await dialog.CommandAsync(Convert.ToBase64String("alice"u8.ToArray())));
        var password = Convert.ToBase64String(Encoding.UTF8.GetBytes("correct horse battery staple"));
        Assert.StartsWith("235 2.7.0", await dialog.CommandAsync(password));
        Assert.StartsWith("503 5.5.1", await dialog.CommandAsync("AUTH PLAIN " + wrong));
        Assert.StartsWith("250 2.1.0", await dialog.CommandAsync("MAIL FROM:<alice@client.example>"));
        Assert.DoesNotContain("correct horse", _relay.Logs.All);
    }

    [Fact]
    public async Task MailKitSubmitsOverStartTlsWithAuth()
    {
        using var client = new SmtpClient { ServerCertificateValidationCallback = (_, _, _, _) => true };
        await client.ConnectAsync("127.0.0.1", _relay.StartTlsPort, SecureSocketOptions.StartTls);
        Assert.True(client.Capabilities.HasFlag(SmtpCapabilities.Pipelining));
        await client.AuthenticateAsync("alice", "correct horse battery staple");
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("alice@client.example"));
        message.To.Add(MailboxAddress.Parse("bob@example.org"));
        message.Cc.Add(MailboxAddress.Parse("carol@example.net"));
        message.Subject = "hello";
        message.Body = new TextPart("plain") { Text = ".a line with a leading dot\nsecond line\n" };
        await client.SendAsync(message);
        await client.DisconnectAsync(true);

        var (body, envelope, facts) = Assert.Single(_stages.Committed);
        Assert.Equal("ESMTPSA", facts.Protocol);
        Assert.Equal("alice", facts.Account);
        Assert.Equal(["bob@example.org", "carol@example.net"], envelope.Recipients);
        Assert.Contains("\r\n.a line with a leading dot\r\n", Encoding.UTF8.GetString(body));
    }

    [Fact]
    public async Task SwaksSubmitsWithStartTlsAuthAndPipelining()
    {
        var swaks = Tools.Require("/usr/bin/swaks");
        var result = await Tools.RunAsync(swaks, [
            "--server", "127.0.0.1", "--port", _relay.StartTlsPort.ToString(), "--tls",
            "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "correct horse battery staple",
            "--pipeline", "--from", "alice@client.example", "--to", "bob@example.org,dave@example.org",
            "--header", "Subject: from swaks", "--body", "..dots\nand more", "--helo", "laptop.local",
        ]);
        Assert.True(result.ExitCode == 0, result.Output + result.Error);
        var (body, envelope, facts) = Assert.Single(_stages.Committed);
        Assert.Equal(["bob@example.org", "dave@example.org"], envelope.Recipients);
        Assert.Equal("ESMTPSA", facts.Protocol);
        Assert.Contains("\r\n..dots\r\n", Encoding.UTF8.GetString(body));
    }

    [Fact]
    public async Task UnauthenticatedClientOutsideTrustedNetworksCannotRelay()
    {
        var swaks = Tools.Require("/usr/bin/swaks");
        var result = await Tools.RunAsync(swaks, [
            "--server", "127.0.0.1", "--port", _relay.StartTlsPort.ToString(), "--tls",
            "--from", "x@client.example", "--to", "victim@example.org",
        ]);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("530 5.7.0", result.Output);
        Assert.Empty(_stages.Committed);
    }
}

public sealed class ConnectionLimitTests
{
    [Fact]
    public async Task ConnectionsOverThePerClientCapGet421AtConnect()
    {
        var stages = new CapturingStages();
        await using var relay = await TestRelay.StartAsync(o => o.Submission.MaxConnectionsPerClient = 2,
            s => CapturingStages.Register(s, stages));
        await using var first = await SmtpDialog.ConnectAsync(relay.PlainPort);
        await using var second = await SmtpDialog.ConnectAsync(relay.PlainPort);
        await using var third = await SmtpDialog.ConnectAsync(relay.PlainPort);
        Assert.StartsWith("220", first.Greeting);
        Assert.StartsWith("220", second.Greeting);
        Assert.StartsWith("421 4.7.0", third.Greeting);
        Assert.True(await third.ClosedAsync());

        // Another client address is a different client.
        await using var other = await SmtpDialog.ConnectAsync(relay.PlainPort, address: "127.0.0.2");
        Assert.StartsWith("220", other.Greeting);
    }
}
