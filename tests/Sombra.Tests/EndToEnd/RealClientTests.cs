using System.Security.Cryptography;
using MimeKit;
using Sombra.Tests.Support;

namespace Sombra.Tests.EndToEnd;

/// <summary>
/// Real clients (swaks, msmtp, NeoMutt) submit through the real relay, which delivers through
/// the real anonymizer and queue to Postfix's smtp-sink; the copy the sink received is checked
/// for every identifying token the client put in.
/// </summary>
public sealed class RealClientTests : IAsyncLifetime
{
    private const string Password = "a long passphrase";
    private const string ClientAddress = "127.0.0.42";
    private const string Helo = "alices-macbook.home.example";

    // What the sender's client reveals; none of it may reach the recipient.
    private static readonly string[] Tokens =
        [ClientAddress, "alices-macbook", "alice.real", "home.example", "Alice Real", "SecretMailer", "Acme Leaks"];

    private SmtpSink _sink = null!;

    public async ValueTask InitializeAsync() => _sink = await SmtpSink.StartAsync();

    public async ValueTask DisposeAsync() => await _sink.DisposeAsync();

    private Task<TestRelay> StartRelayAsync(string mode) =>
        TestRelay.StartAsync(o =>
        {
            o.Anonymity.Mode = mode;
            o.Submission.TrustedNetworks.Add("127.0.0.1/32");
            o.Delivery.Smarthost = $"127.0.0.1:{_sink.Port}";
            o.Delivery.SmarthostTls = "none";
        });

    private static void AssertNoToken(string message)
    {
        foreach (var token in Tokens)
            Assert.False(message.Contains(token, StringComparison.OrdinalIgnoreCase), $"'{token}' leaked:\n{message}");
    }

    [Theory]
    [InlineData("block")]
    [InlineData("mask")]
    public async Task SwaksWithAuthFromADistinctiveAddress(string mode)
    {
        await using var relay = await StartRelayAsync(mode);
        relay.AddAccount("alice", Password);
        var result = await Tools.RunAsync(Tools.Require("/usr/bin/swaks"), [
            "--server", "127.0.0.1", "--port", relay.StartTlsPort.ToString(), "--tls",
            "--local-interface", ClientAddress, "--helo", Helo,
            "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", Password,
            "--from", "alice.real@home.example", "--to", "bob@example.org",
            "--header", "From: Alice Real <alice.real@home.example>",
            "--header", "X-Mailer: SecretMailer 9.9", "--header", "Organization: Acme Leaks",
            "--header", "Disposition-Notification-To: alice.real@home.example",
            "--header", "Subject: the documents",
            "--body", "Meet at the usual place.\n..a dotted line\n",
        ]);
        Assert.True(result.ExitCode == 0, result.Output + result.Error);

        var dump = Assert.Single(await _sink.WaitForAsync(1));
        Assert.Contains("X-Helo-Args: relay.test", dump);
        Assert.Contains("X-Mail-Args: <anonymous@relay.test>", dump);
        var message = SmtpSink.Message(dump);
        AssertNoToken(message);
        Assert.Contains("Subject: the documents", message);
        Assert.Contains("From: anonymous@relay.test", message);
        Assert.Contains("Meet at the usual place.\n..a dotted line\n", message);
        Assert.DoesNotContain("Disposition-Notification-To", message);

        var received = message.Split('\n').Where(l => l.StartsWith("Received:")).ToArray();
        Assert.Single(received);
        if (mode == "block")
            Assert.StartsWith("Received: by relay.test with ESMTPSA id ", received[0]);
        else
            Assert.Matches(@"^Received: from \S+ \(\S+ \[(10|172|192)\.[0-9.]+\]\)", received[0]);
    }

    [Fact]
    public async Task MsmtpWithStartTlsAndABccRecipient()
    {
        await using var relay = await StartRelayAsync("block");
        relay.AddAccount("alice", Password);
        var directory = TempDirectory.Create("msmtp");
        var config = Path.Combine(directory, "msmtprc");
        File.WriteAllText(config, $"""
            account default
            host 127.0.0.1
            port {relay.StartTlsPort}
            tls on
            tls_starttls on
            tls_certcheck off
            auth plain
            user alice
            password {Password}
            from alice.real@home.example
            domain {Helo}
            source_ip {ClientAddress}
            """);
        File.SetUnixFileMode(config, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var message = $"""
            From: Alice Real <alice.real@home.example>
            To: bob@example.org
            Bcc: hidden@example.net
            Subject: via msmtp
            Message-ID: <123.456@{Helo}>
            User-Agent: SecretMailer/2.0

            body from msmtp

            """.Replace("\n", "\r\n");
        var result = await Tools.RunAsync(Tools.Require("/usr/bin/msmtp"), ["-C", config, "-t"], message);
        Assert.True(result.ExitCode == 0, result.Output + result.Error);

        var dumps = await _sink.WaitForAsync(1);
        var dump = Assert.Single(dumps);
        Assert.Contains("<hidden@example.net>", dump); // delivered to the Bcc recipient...
        var delivered = SmtpSink.Message(dump);
        Assert.DoesNotContain("hidden@example.net", delivered); // ...without showing it
        Assert.DoesNotContain("Bcc", delivered);
        Assert.Contains("body from msmtp", delivered);
        AssertNoToken(delivered);
        // Two recipients: the trace header must not name either (it would reveal the Bcc).
        Assert.DoesNotContain(" for <", delivered);
    }

    [Fact]
    public async Task NeoMuttWithAnAttachmentThatArrivesByteForByte()
    {
        await using var relay = await StartRelayAsync("mask");
        var directory = TempDirectory.Create("neomutt");
        var attachment = Path.Combine(directory, "report.bin");
        var bytes = RandomNumberGenerator.GetBytes(50_000);
        File.WriteAllBytes(attachment, bytes);
        var muttrc = Path.Combine(directory, "muttrc");
        File.WriteAllText(muttrc, $"""
            set from="Alice Real <alice.real@home.example>"
            set use_from=yes
            set hostname="{Helo}"
            set smtp_url="smtp://127.0.0.1:{relay.PlainPort}/"
            set ssl_starttls=no
            set ssl_force_tls=no
            set user_agent=yes
            set record=""
            set folder="{directory}"
            set header_cache=""
            set message_cachedir=""
            """);
        var body = Path.Combine(directory, "body.txt");
        File.WriteAllText(body, "see attached\n");
        var result = await Tools.RunAsync(Tools.Require("/usr/bin/neomutt"),
            ["-n", "-F", muttrc, "-s", "quarterly", "-a", attachment, "--", "bob@example.org"],
            File.ReadAllText(body), environment: new Dictionary<string, string> { ["HOME"] = directory });
        Assert.True(result.ExitCode == 0, result.Output + result.Error);

        var delivered = SmtpSink.Message(Assert.Single(await _sink.WaitForAsync(1)));
        AssertNoToken(delivered);
        Assert.DoesNotContain("NeoMutt", delivered, StringComparison.OrdinalIgnoreCase);

        var parsed = MimeMessage.Load(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(delivered.Replace("\n", "\r\n"))));
        var part = Assert.Single(parsed.Attachments.OfType<MimePart>());
        Assert.Equal("report.bin", part.FileName);
        using var decoded = new MemoryStream();
        part.Content!.DecodeTo(decoded);
        Assert.Equal(bytes, decoded.ToArray());
    }
}
