using Sombra.Tests.Support;
using static Sombra.Tests.Submission.AbuseControlTests;
using static Sombra.Tests.Submission.KeyRotationTests;

namespace Sombra.Tests.Submission;

/// <summary>
/// Limits:SharedNetworks: behind a Tor onion service every user comes from 127.0.0.1, and one
/// of them must not be able to shut out all the others.
/// </summary>
public sealed class SharedNetworkTests
{
    private const string Tor = "127.0.2.1";

    private static async Task<SmtpDialog> LoginAsync(TestRelay relay, string address, string user)
    {
        var dialog = await SmtpDialog.ConnectAsync(relay.ImplicitPort, implicitTls: true, address: address);
        await dialog.CommandAsync("EHLO c");
        Assert.StartsWith("235", await dialog.CommandAsync(Plain(user, "pass")));
        return dialog;
    }

    [Fact]
    public async Task AuthFailuresCountPerAccountNameNotForTheWholeNetwork()
    {
        var stages = new CapturingStages();
        await using var relay = await TestRelay.StartAsync(o =>
        {
            o.Limits.SharedNetworks.Add("127.0.2.0/24");
            o.Limits.AuthFailuresBeforeDelay = 100;
            o.Limits.AuthFailuresBeforeBlock = 3;
        }, s => CapturingStages.Register(s, stages));
        relay.AddAccount("alice", "pass");
        relay.AddAccount("bob", "pass");

        await using (var guesser = await SmtpDialog.ConnectAsync(relay.ImplicitPort, implicitTls: true, address: Tor))
        {
            await guesser.CommandAsync("EHLO c");
            Assert.StartsWith("535", await guesser.CommandAsync(Plain("alice", "guess 1")));
            Assert.StartsWith("535", await guesser.CommandAsync(Plain("alice", "guess 2")));
            Assert.StartsWith("421 4.7.0", await guesser.CommandAsync(Plain("alice", "guess 3")));
        }

        // Everyone else behind the same address goes on as before.
        await using (var other = await SmtpDialog.ConnectAsync(relay.StartTlsPort, address: Tor))
            Assert.StartsWith("220", other.Greeting);
        await using (var bob = await LoginAsync(relay, Tor, "bob"))
            Assert.StartsWith("250", await SubmitAsync(bob, "r@example.org"));

        // The guessed account stays shut for the block duration, even with the right password.
        await using var alice = await SmtpDialog.ConnectAsync(relay.ImplicitPort, implicitTls: true, address: Tor);
        await alice.CommandAsync("EHLO c");
        Assert.StartsWith("421 4.7.0", await alice.CommandAsync(Plain("alice", "pass")));
    }

    [Fact]
    public async Task OnlyPerAccountRateLimitsApplyInASharedNetwork()
    {
        var stages = new CapturingStages();
        await using var relay = await TestRelay.StartAsync(o =>
        {
            o.Limits.SharedNetworks.Add("127.0.2.0/24");
            o.Limits.MessagesPerHour = 1;
        }, s => CapturingStages.Register(s, stages));
        foreach (var name in new[] { "alice", "bob", "carol", "dave" })
            relay.AddAccount(name, "pass");

        await using var alice = await LoginAsync(relay, Tor, "alice");
        await using var bob = await LoginAsync(relay, Tor, "bob");
        Assert.StartsWith("250", await SubmitAsync(alice, "r@example.org"));
        Assert.StartsWith("250", await SubmitAsync(bob, "r@example.org"));
        Assert.StartsWith("450 4.7.1", await SubmitAsync(alice, "r@example.org"));

        // Outside it, the network's own limit still holds.
        await using var carol = await LoginAsync(relay, "127.0.3.1", "carol");
        await using var dave = await LoginAsync(relay, "127.0.3.1", "dave");
        Assert.StartsWith("250", await SubmitAsync(carol, "r@example.org"));
        Assert.StartsWith("450 4.7.1", await SubmitAsync(dave, "r@example.org"));
    }
}
