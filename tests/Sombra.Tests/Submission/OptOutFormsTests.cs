using System.Text;
using Sombra.Tests.Support;

namespace Sombra.Tests.Submission;

/// <summary>
/// An opt-out holds against every spelling of the address that reaches the same mailbox:
/// quoted or not, IDNA U-label or A-label, any case.
/// </summary>
public sealed class OptOutFormsTests
{
    [Fact]
    public async Task EquivalentFormsOfAnOptedOutAddressAreRefused()
    {
        var stages = new CapturingStages();
        await using var relay = await TestRelay.StartAsync(o => o.Submission.TrustedNetworks.Add("127.0.0.0/8"),
            s => CapturingStages.Register(s, stages));
        // As the operator might type them: a U-label, an A-label, an accented local part.
        foreach (var address in new[] { "quiet@example.org", "quiet@bücher.example", "post@xn--mnchen-3ya.example",
            "jos\u00e9@example.net" })
            Assert.Equal(0, (await CliRunner.RunAsync(relay.Options, "optout", "add", address)).ExitCode);

        await using var dialog = await SmtpDialog.ConnectAsync(relay.PlainPort);
        await dialog.CommandAsync("EHLO c");
        Assert.StartsWith("250", await dialog.CommandAsync("MAIL FROM:<a@client.example> SMTPUTF8"));
        var refused = new[]
        {
            "quiet@example.org", "QUIET@Example.ORG", "\"quiet\"@example.org", "\"qu\\iet\"@example.org",
            "quiet@xn--bcher-kva.example", "quiet@BÜCHER.example", "post@münchen.example",
            "jos\u00e9@example.net", "JOS\u00c9@example.net",
        };
        foreach (var address in refused)
        {
            var reply = await dialog.CommandAsync($"RCPT TO:<{address}>");
            Assert.True(reply.StartsWith("550 5.7.1"), address + ": " + reply);
        }

        // Other mailboxes are not caught: a quoted local part that is not the same atom, a
        // neighbouring name, the domain without its umlaut.
        foreach (var address in new[] { "\"qu iet\"@example.org", "quiet2@example.org", "quiet@bucher.example" })
            Assert.True((await dialog.CommandAsync($"RCPT TO:<{address}>")).StartsWith("250"), address);

        var stored = File.ReadAllText(Path.Combine(relay.DataDirectory, "optout.json"), Encoding.UTF8);
        Assert.DoesNotContain("quiet", stored);
        Assert.DoesNotContain("bcher", stored);
    }

    [Fact]
    public async Task RemovingOneFormRemovesTheAddress()
    {
        var stages = new CapturingStages();
        await using var relay = await TestRelay.StartAsync(o => o.Submission.TrustedNetworks.Add("127.0.0.0/8"),
            s => CapturingStages.Register(s, stages));
        Assert.Equal(0, (await CliRunner.RunAsync(relay.Options, "optout", "add", "quiet@bücher.example")).ExitCode);
        var again = await CliRunner.RunAsync(relay.Options, "optout", "add", "\"Quiet\"@XN--BCHER-KVA.example");
        Assert.Contains("already listed", again.Output);
        Assert.Contains("removed",
            (await CliRunner.RunAsync(relay.Options, "optout", "remove", "quiet@xn--bcher-kva.example")).Output);

        await using var dialog = await SmtpDialog.ConnectAsync(relay.PlainPort);
        await dialog.CommandAsync("EHLO c");
        await dialog.CommandAsync("MAIL FROM:<a@client.example> SMTPUTF8");
        Assert.StartsWith("250", await dialog.CommandAsync("RCPT TO:<quiet@bücher.example>"));
    }
}
