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
        await using var sink = await SmtpSink.StartAsync();
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
            Assert.DoesNotContain(token, SmtpSink.Message(delivered));

        Assert.Equal(0, await relay.TerminateAsync());
        AssertNoTokenInDirectory(data);
        foreach (var token in Tokens)
            Assert.False(relay.Output.Contains(token), $"the log holds '{token}':\n{relay.Output}");
        Assert.Contains("dbug", relay.Output); // it really logged at Debug
    }

    private static void AssertNoTokenInDirectory(string directory)
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
            foreach (var token in Tokens)
            {
                Assert.False(text.Contains(token, StringComparison.OrdinalIgnoreCase), $"{file} holds '{token}'");
                Assert.False(utf16.Contains(token, StringComparison.OrdinalIgnoreCase), $"{file} holds '{token}' (UTF-16)");
            }
        }
    }
}
