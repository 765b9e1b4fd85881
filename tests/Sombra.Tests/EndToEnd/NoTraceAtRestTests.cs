using System.Text;
using System.Text.Json;
using Sombra.Tests.Support;

namespace Sombra.Tests.EndToEnd;

/// <summary>
/// Issue 6: after a submission from a distinctive address with a distinctive HELO and
/// identifying headers, at Debug log level, neither the data directory (queue, database, WAL,
/// temporary files) nor anything the process printed holds any of those tokens, while the
/// message is held by mixing and after it has left.
/// </summary>
public sealed class NoTraceAtRestTests
{
    private static readonly string[] Tokens =
    [
        "127.0.0.42", "laptop-of-maria.barrio.example", "maria.gonzalez@barrio.example",
        "Maria Gonzalez", "LeakyMail/7.3", "Sindicato Secreto", "msgid-8f3a2b@laptop-of-maria",
        "receipt-to@barrio.example", "192.0.2.77",
    ];

    [Fact]
    public async Task NoClientTokenInTheDataDirectoryOrTheLogs()
    {
        await using var sink = await PostfixSink.StartAsync();
        var data = TempDirectory.Create("at-rest");
        var config = Path.Combine(TempDirectory.Create("at-rest-config"), "sombra.json");
        File.WriteAllText(config, JsonSerializer.Serialize(new
        {
            HostName = "relay.test",
            DataDirectory = data,
            LogLevel = "Debug",
            Submission = new { Endpoints = new[] { new { Address = "127.0.0.1:0", Tls = "starttls" } } },
            Delivery = new { Smarthost = $"127.0.0.1:{sink.Port}", SmarthostTls = "none" },
            Mixing = new { MinDelay = "4s", MaxDelay = "5s" },
        }));
        Assert.Equal(0, (await CliRunner.RunWithConfigAsync(config, "pass phrase\n", "user", "add", "maria")).ExitCode);

        await using var relay = await RelayProcess.StartAsync(config);
        var result = await Tools.RunAsync(Tools.Require("/usr/bin/swaks"), [
            "--server", "127.0.0.1", "--port", relay.Ports[0].ToString(), "--tls",
            "--local-interface", "127.0.0.42", "--helo", "laptop-of-maria.barrio.example",
            "--auth", "LOGIN", "--auth-user", "maria", "--auth-password", "pass phrase",
            "--from", "maria.gonzalez@barrio.example", "--to", "editor@example.org",
            "--header", "From: Maria Gonzalez <maria.gonzalez@barrio.example>",
            "--header", "X-Mailer: LeakyMail/7.3", "--header", "Organization: Sindicato Secreto",
            "--header", "Message-ID: <msgid-8f3a2b@laptop-of-maria>",
            "--header", "Return-Receipt-To: receipt-to@barrio.example",
            "--header", "X-Originating-IP: [192.0.2.77]",
            "--header", "Received: from laptop-of-maria.barrio.example ([192.0.2.77]) by mx.barrio.example",
            "--body", "the evidence",
        ]);
        Assert.True(result.ExitCode == 0, result.Output + result.Error);

        // Held by the mixing delay: the queue has the message now.
        AssertNoTokenInDirectory(data);
        var delivered = Assert.Single(await sink.WaitForAsync(1, timeoutSeconds: 60));
        Assert.Contains("the evidence", delivered);
        foreach (var token in Tokens)
            Assert.DoesNotContain(token, PostfixSink.Message(delivered));

        Assert.Equal(0, await relay.TerminateAsync());
        AssertNoTokenInDirectory(data);
        foreach (var token in Tokens)
            Assert.False(relay.Output.Contains(token), $"the log holds '{token}':\n{relay.Output}");
        Assert.Contains("dbug", relay.Output); // it really logged at Debug
    }

    private const string Helo = "laptop-of-maria.barrio.example";
    private const string AuthUser = "zorro-distinct-user";
    private const string AuthPassword = "Contrasena-Secreta-77";
    private const string Password = "Tequila-Sunrise-4411";
    private const string OptedOut = "silent-reader@example.org";

    /// <summary>What a refused or failed submission carried; none of it may stay anywhere.</summary>
    private static readonly string[] RefusedTokens =
        [.. Tokens, AuthUser, AuthPassword, Password, OptedOut];

    private static readonly string IdentifyingHeaders =
        "From: Maria Gonzalez <maria.gonzalez@barrio.example>\r\nX-Mailer: LeakyMail/7.3\r\n"
        + "Organization: Sindicato Secreto\r\nMessage-ID: <msgid-8f3a2b@laptop-of-maria>\r\n"
        + "Return-Receipt-To: receipt-to@barrio.example\r\nX-Originating-IP: [192.0.2.77]\r\n";

    /// <summary>
    /// Everything a client can be refused for (smuggling, size, scrub, rate, opt-out, a wrong
    /// password), and a message whose next hop answers 550 quoting the envelope back, so that a
    /// failure report is queued for the account's --notify address. Then neither the directory
    /// (queue.db, -wal, -shm, keys, accounts) nor the Debug log holds any client token.
    /// </summary>
    [Fact]
    public async Task RefusedAndBouncedMessagesLeaveNoTraceEither()
    {
        using var sink = new AiosmtpdSink();
        var data = TempDirectory.Create("at-rest-refused");
        var config = Path.Combine(TempDirectory.Create("at-rest-refused-config"), "sombra.json");
        File.WriteAllText(config, JsonSerializer.Serialize(new
        {
            HostName = "relay.test",
            DataDirectory = data,
            LogLevel = "Debug",
            Submission = new
            {
                Endpoints = new[] { new { Address = "127.0.0.1:0", Tls = "starttls" } },
                MaxMessageSize = 20000,
            },
            Delivery = new { Smarthost = $"127.0.0.1:{sink.Port}", SmarthostTls = "none" },
            Mixing = new { MinDelay = "3s", MaxDelay = "4s" },
            Limits = new { MessagesPerHour = 2 },
        }));
        var add = await CliRunner.RunWithConfigAsync(config, Password + "\n", "user", "add", "maria",
            "--notify", "maria-notify@example.net");
        Assert.Equal(0, add.ExitCode);
        Assert.Equal(0, (await CliRunner.RunWithConfigAsync(config, null, "optout", "add", OptedOut)).ExitCode);

        await using var relay = await RelayProcess.StartAsync(config);
        var port = relay.Ports[0];

        // A wrong password under a name that is no account.
        await using (var guesser = await OpenAsync(port))
            Assert.StartsWith("535", await guesser.CommandAsync(Plain(AuthUser, AuthPassword)));

        await using (var dialog = await OpenAsync(port))
        {
            Assert.StartsWith("235", await dialog.CommandAsync(Plain("maria", Password)));
            var smuggled = IdentifyingHeaders + "Subject: s\r\n\r\nthe evidence\n.\nMAIL FROM:<x@y>\r\n.\r\n";
            Assert.StartsWith("550 5.5.2", await SendAsync(dialog, "editor@example.org", smuggled));
            var huge = IdentifyingHeaders + "Subject: s\r\n\r\n"
                + string.Concat(Enumerable.Repeat("the evidence " + new string('x', 80) + "\r\n", 300)) + ".\r\n";
            Assert.StartsWith("552 5.3.4", await SendAsync(dialog, "editor@example.org", huge));
            var signed = IdentifyingHeaders + "MIME-Version: 1.0\r\nContent-Type: multipart/signed; "
                + "protocol=\"application/pgp-signature\"; micalg=pgp-sha256; boundary=\"sig\"\r\n\r\n"
                + "--sig\r\nContent-Type: text/plain\r\n\r\nthe evidence\r\n--sig\r\n"
                + "Content-Type: application/pgp-signature\r\n\r\n-----BEGIN PGP SIGNATURE-----\r\nabc\r\n"
                + "-----END PGP SIGNATURE-----\r\n--sig--\r\n.\r\n";
            Assert.StartsWith("554 5.6.0", await SendAsync(dialog, "editor@example.org", signed));
            Assert.StartsWith("250", await dialog.CommandAsync("MAIL FROM:<maria.gonzalez@barrio.example>"));
            Assert.StartsWith("550 5.7.1", await dialog.CommandAsync($"RCPT TO:<{OptedOut}>"));
            await dialog.CommandAsync("RSET");

            // Two messages are queued: one for an editor, one whose next hop refuses it.
            var message = IdentifyingHeaders + "Subject: s\r\n\r\nthe evidence\r\n.\r\n";
            Assert.StartsWith("250", await SendAsync(dialog, "editor@example.org", message));
            Assert.StartsWith("250", await SendAsync(dialog, "echo-desk@example.org", message));
            Assert.StartsWith("450 4.7.1", await dialog.CommandAsync("MAIL FROM:<maria.gonzalez@barrio.example>"));
        }

        // Held by mixing: both wait in the queue, with the --notify address, and the WAL is there.
        Assert.True(File.Exists(Path.Combine(data, "queue.db-wal")));
        Assert.True(File.Exists(Path.Combine(data, "queue.db-shm")));
        AssertNoTokenInDirectory(data, RefusedTokens);

        // The editor's copy and the failure report reach the sink; neither names the client.
        var arrived = await sink.WaitForAsync(2, seconds: 60);
        Assert.Equal(2, arrived.Count);
        var report = Assert.Single(arrived, m => m.Recipients.Contains("maria-notify@example.net"));
        // It quotes the next hop's reply, which quoted back what Sombra sent it.
        Assert.Contains("refused mail from <anonymous@relay.test> (helo relay.test)",
            Encoding.UTF8.GetString(report.Content));
        foreach (var received in arrived)
            foreach (var token in RefusedTokens)
                Assert.DoesNotContain(token, Encoding.UTF8.GetString(received.Content) + received.MailFrom);

        Assert.Equal(0, await relay.TerminateAsync());
        AssertNoTokenInDirectory(data, RefusedTokens);
        foreach (var token in RefusedTokens.Append("maria"))
            Assert.False(relay.Output.Contains(token), $"the log holds '{token}':\n{relay.Output}");
        Assert.Contains("dbug", relay.Output);
        Assert.Contains("authentication failed", relay.Output);
    }

    /// <summary>A session from the distinctive address with the distinctive HELO, under STARTTLS.</summary>
    private static async Task<SmtpDialog> OpenAsync(int port)
    {
        var dialog = await SmtpDialog.ConnectAsync(port, address: "127.0.0.42");
        await dialog.CommandAsync("EHLO " + Helo);
        Assert.StartsWith("220", await dialog.CommandAsync("STARTTLS"));
        await dialog.HandshakeAsync();
        await dialog.CommandAsync("EHLO " + Helo);
        return dialog;
    }

    private static async Task<string> SendAsync(SmtpDialog dialog, string recipient, string data)
    {
        Assert.StartsWith("250", await dialog.CommandAsync("MAIL FROM:<maria.gonzalez@barrio.example>"));
        Assert.StartsWith("250", await dialog.CommandAsync($"RCPT TO:<{recipient}>"));
        Assert.StartsWith("354", await dialog.CommandAsync("DATA"));
        await dialog.SendAsync(data);
        return await dialog.ReadReplyAsync();
    }

    private static string Plain(string user, string password) =>
        "AUTH PLAIN " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"\0{user}\0{password}"));

    private static void AssertNoTokenInDirectory(string directory) => AssertNoTokenInDirectory(directory, Tokens);

    private static void AssertNoTokenInDirectory(string directory, string[] tokens)
    {
        foreach (var file in Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories))
        {
            byte[] bytes;
            try
            {
                bytes = File.ReadAllBytes(file);
            }
            catch (IOException)
            {
                continue; // removed while we looked (a delivered message)
            }
            var text = Encoding.Latin1.GetString(bytes);
            var utf16 = Encoding.Unicode.GetString(bytes);
            foreach (var token in tokens)
            {
                Assert.False(text.Contains(token, StringComparison.OrdinalIgnoreCase), $"{file} holds '{token}'");
                Assert.False(utf16.Contains(token, StringComparison.OrdinalIgnoreCase), $"{file} holds '{token}' (UTF-16)");
            }
        }
    }
}
