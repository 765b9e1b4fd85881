using System.Text;
using Sombra.Tests.Support;

namespace Sombra.Tests.Submission;

/// <summary>Rate limits, AUTH throttling and recipient opt-out, through the real server.</summary>
public sealed class AbuseControlTests
{
    internal static async Task<string> SubmitAsync(SmtpDialog dialog, params string[] recipients)
    {
        var mail = await dialog.CommandAsync("MAIL FROM:<a@client.example>");
        if (!mail.StartsWith("250"))
            return mail;
        foreach (var recipient in recipients)
        {
            var rcpt = await dialog.CommandAsync($"RCPT TO:<{recipient}>");
            if (!rcpt.StartsWith("250"))
            {
                await dialog.CommandAsync("RSET");
                return rcpt;
            }
        }
        await dialog.CommandAsync("DATA");
        await dialog.SendAsync("Subject: s\r\n\r\nx\r\n.\r\n");
        return await dialog.ReadReplyAsync();
    }

    [Fact]
    public async Task MessagesPerHourPerClientNetwork()
    {
        var stages = new CapturingStages();
        await using var relay = await TestRelay.StartAsync(o =>
        {
            o.Submission.TrustedNetworks.Add("127.0.0.0/8");
            o.Limits.MessagesPerHour = 2;
        }, s => CapturingStages.Register(s, stages));

        await using var dialog = await SmtpDialog.ConnectAsync(relay.PlainPort, address: "127.0.0.7");
        await dialog.CommandAsync("EHLO c");
        Assert.StartsWith("250", await SubmitAsync(dialog, "r@example.org"));
        Assert.StartsWith("250", await SubmitAsync(dialog, "r@example.org"));
        var third = await SubmitAsync(dialog, "r@example.org");
        Assert.StartsWith("450 4.7.1", third);
        Assert.Contains("rate limit", third);

        // Another network has its own allowance.
        await using var other = await SmtpDialog.ConnectAsync(relay.PlainPort, address: "127.0.0.8");
        await other.CommandAsync("EHLO c");
        Assert.StartsWith("250", await SubmitAsync(other, "r@example.org"));
    }

    [Fact]
    public async Task RecipientsPerHour()
    {
        var stages = new CapturingStages();
        await using var relay = await TestRelay.StartAsync(o =>
        {
            o.Submission.TrustedNetworks.Add("127.0.0.0/8");
            o.Limits.RecipientsPerHour = 3;
        }, s => CapturingStages.Register(s, stages));
        await using var dialog = await SmtpDialog.ConnectAsync(relay.PlainPort, address: "127.0.0.9");
        await dialog.CommandAsync("EHLO c");
        Assert.StartsWith("250", await SubmitAsync(dialog, "a@example.org", "b@example.org"));
        Assert.StartsWith("450 4.7.1", await SubmitAsync(dialog, "c@example.org", "d@example.org"));
        Assert.StartsWith("250", await SubmitAsync(dialog, "c@example.org"));
    }

    [Fact]
    public async Task AuthFailuresAreDelayedThenRefusedWith421()
    {
        var stages = new CapturingStages();
        await using var relay = await TestRelay.StartAsync(o =>
        {
            o.Limits.AuthFailuresBeforeDelay = 1;
            o.Limits.AuthFailureDelay = TimeSpan.FromMilliseconds(200);
            o.Limits.AuthFailuresBeforeBlock = 3;
        }, s => CapturingStages.Register(s, stages));
        relay.AddAccount("alice", "right password");
        var wrong = "AUTH PLAIN " + Convert.ToBase64String(Encoding.UTF8.GetBytes("\0alice\0guess"));

        await using var dialog = await SmtpDialog.ConnectAsync(relay.ImplicitPort, implicitTls: true, address: "127.0.0.11");
        await dialog.CommandAsync("EHLO c");
        Assert.StartsWith("535 5.7.8", await dialog.CommandAsync(wrong));
        var started = DateTime.UtcNow;
        Assert.StartsWith("535 5.7.8", await dialog.CommandAsync(wrong));
        Assert.True(DateTime.UtcNow - started >= TimeSpan.FromMilliseconds(150), "the second failure is answered late");
        Assert.StartsWith("421 4.7.0", await dialog.CommandAsync(wrong));
        Assert.True(await dialog.ClosedAsync());

        // The network stays shut out for a while, even with the right password.
        await using var again = await SmtpDialog.ConnectAsync(relay.StartTlsPort, address: "127.0.0.11");
        Assert.StartsWith("421 4.7.0", again.Greeting);

        // Nobody else is.
        await using var other = await SmtpDialog.ConnectAsync(relay.ImplicitPort, implicitTls: true, address: "127.0.0.12");
        await other.CommandAsync("EHLO c");
        var right = "AUTH PLAIN " + Convert.ToBase64String(Encoding.UTF8.GetBytes("\0alice\0right password"));
        Assert.StartsWith("235", await other.CommandAsync(right));
        Assert.DoesNotContain("guess", relay.Logs.All);
    }

    [Fact]
    public async Task OptedOutRecipientIsRefusedWithANeutralReply()
    {
        var stages = new CapturingStages();
        await using var relay = await TestRelay.StartAsync(o => o.Submission.TrustedNetworks.Add("127.0.0.0/8"),
            s => CapturingStages.Register(s, stages));
        var add = await CliRunner.RunAsync(relay.Options, "optout", "add", "Quiet@Example.org");
        Assert.Equal(0, add.ExitCode);

        await using var dialog = await SmtpDialog.ConnectAsync(relay.PlainPort);
        await dialog.CommandAsync("EHLO c");
        await dialog.CommandAsync("MAIL FROM:<a@client.example>");
        var refused = await dialog.CommandAsync("RCPT TO:<quiet@example.org>");
        Assert.StartsWith("550 5.7.1", refused);
        Assert.DoesNotContain("opt", refused, StringComparison.OrdinalIgnoreCase);
        Assert.StartsWith("250", await dialog.CommandAsync("RCPT TO:<loud@example.org>"));

        // The list on disk holds no address.
        var stored = File.ReadAllText(Path.Combine(relay.DataDirectory, "optout.json"));
        Assert.DoesNotContain("quiet", stored, StringComparison.OrdinalIgnoreCase);

        Assert.Equal(0, (await CliRunner.RunAsync(relay.Options, "optout", "remove", "quiet@example.org")).ExitCode);
        await dialog.CommandAsync("RSET");
        await dialog.CommandAsync("MAIL FROM:<a@client.example>");
        Assert.StartsWith("250", await dialog.CommandAsync("RCPT TO:<quiet@example.org>"));
    }
}
