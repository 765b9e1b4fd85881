using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Sombra.Anonymity;
using Sombra.Tests.Support;

namespace Sombra.Tests.Submission;

/// <summary>
/// Faults of the server's own (a stage that throws, a full disk, a broken data file) answer
/// 451 4.3.0 for the transaction, and the session goes on.
/// </summary>
public sealed class FaultTests
{
    /// <summary>Reads a little of the message and then fails, as a write to a full disk would.</summary>
    private sealed class FailingAnonymizer : IAnonymizer
    {
        public async Task<ScrubResult> ScrubAsync(Stream original, Stream scrubbed, SessionFacts facts,
            CancellationToken cancellationToken)
        {
            var buffer = new byte[4096];
            _ = await original.ReadAsync(buffer, cancellationToken);
            throw new IOException("No space left on device");
        }
    }

    [Fact]
    public async Task StageFailingMidMessageIsAnswered451AfterTheWholeDataAndTheSessionGoesOn()
    {
        var stages = new CapturingStages();
        await using var relay = await TestRelay.StartAsync(
            o => o.Submission.TrustedNetworks.Add("127.0.0.1/32"),
            s =>
            {
                CapturingStages.Register(s, stages);
                s.AddSingleton<IAnonymizer>(new FailingAnonymizer());
            });
        await using var dialog = await SmtpDialog.ConnectAsync(relay.PlainPort);
        await dialog.CommandAsync("EHLO client.example");
        await dialog.CommandAsync("MAIL FROM:<a@client.example>");
        await dialog.CommandAsync("RCPT TO:<b@example.org>");
        Assert.StartsWith("354", await dialog.CommandAsync("DATA"));

        // Well over the megabyte the pipe to the stage holds before it pushes back, so nothing
        // but the end of the stage can let the server read on to the terminator.
        var line = new string('x', 76) + "\r\n";
        var body = string.Concat(Enumerable.Repeat(line, (3 << 20) / line.Length));
        await dialog.SendAsync("Subject: big\r\n\r\n" + body + ".\r\n").WaitAsync(TimeSpan.FromSeconds(30),
            TestContext.Current.CancellationToken);
        Assert.StartsWith("451 4.3.0", await dialog.ReadReplyAsync(timeoutSeconds: 30));

        Assert.StartsWith("250", await dialog.CommandAsync("NOOP"));
        Assert.StartsWith("250 2.1.0", await dialog.CommandAsync("MAIL FROM:<a@client.example>"));
        Assert.Empty(stages.Committed);
        Assert.DoesNotContain("No space left", relay.Logs.All);
    }

    private static async Task<TestRelay> StartWithAccountAsync(CapturingStages stages)
    {
        var relay = await TestRelay.StartAsync(services: s => CapturingStages.Register(s, stages));
        relay.AddAccount("alice", "correct horse");
        return relay;
    }

    /// <summary>An operator's hand edit gone wrong: accounts.json no longer parses.</summary>
    /// <returns>Puts the file back as it was.</returns>
    private static Action BreakAccountsFile(TestRelay relay)
    {
        var path = Path.Combine(relay.Options.DataPath, "accounts.json");
        var good = File.ReadAllText(path);
        Rewrite(path, "{ \"alice\": ", 1);
        return () => Rewrite(path, good, 2);
    }

    private static void Rewrite(string path, string text, int minutesAhead)
    {
        File.WriteAllText(path, text);
        File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddMinutes(minutesAhead)); // surely seen as changed
    }

    private static readonly string Credentials =
        "AUTH PLAIN " + Convert.ToBase64String(Encoding.UTF8.GetBytes("\0alice\0correct horse"));

    [Fact]
    public async Task FaultInACommandIsAnswered451AndTheSessionGoesOn()
    {
        var stages = new CapturingStages();
        await using var relay = await StartWithAccountAsync(stages);
        await using var dialog = await SmtpDialog.ConnectAsync(relay.ImplicitPort, implicitTls: true);
        Assert.StartsWith("250", await dialog.CommandAsync("EHLO client.example"));
        var repair = BreakAccountsFile(relay);

        // Not 535: the password may well be right, and a 5xx would make the client give up.
        Assert.StartsWith("451 4.3.0", await dialog.CommandAsync(Credentials));
        Assert.StartsWith("250 2.0.0", await dialog.CommandAsync("NOOP"));

        repair();
        Assert.StartsWith("235 2.7.0", await dialog.CommandAsync(Credentials));
        Assert.DoesNotContain("alice", relay.Logs.All);
    }

    [Fact]
    public async Task FaultAfterTheDataIsReadIsAnswered451AndTheSessionGoesOn()
    {
        var stages = new CapturingStages();
        await using var relay = await StartWithAccountAsync(stages);
        await using var dialog = await SmtpDialog.ConnectAsync(relay.ImplicitPort, implicitTls: true);
        await dialog.CommandAsync("EHLO client.example");
        Assert.StartsWith("235", await dialog.CommandAsync(Credentials));
        Assert.StartsWith("250", await dialog.CommandAsync("MAIL FROM:<alice@client.example>"));
        Assert.StartsWith("250", await dialog.CommandAsync("RCPT TO:<b@example.org>"));
        Assert.StartsWith("354", await dialog.CommandAsync("DATA"));
        BreakAccountsFile(relay); // the account's notify address is read at the end of DATA

        await dialog.SendAsync("Subject: s\r\n\r\nbody\r\nMAIL FROM:<x@y.example>\r\n.\r\n");
        Assert.StartsWith("451 4.3.0", await dialog.ReadReplyAsync());
        Assert.StartsWith("250 2.0.0", await dialog.CommandAsync("NOOP"));
        Assert.StartsWith("503 5.5.1", await dialog.CommandAsync("DATA")); // the transaction is over
        Assert.Empty(stages.Committed);
    }
}
