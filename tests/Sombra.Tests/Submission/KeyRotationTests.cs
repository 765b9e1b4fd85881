using System.Net;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Sombra.Submission;
using Sombra.Tests.Support;

namespace Sombra.Tests.Submission;

/// <summary>
/// The daily key rotation of <see cref="ClientKeys"/> must not be a moment at which every rate
/// limit and AUTH block is forgotten: an abuser could wait for it.
/// </summary>
public sealed class KeyRotationTests
{
    [Fact]
    public async Task RateLimitsAndAuthBlocksOutliveTheKeyRotation()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));
        var stages = new CapturingStages();
        await using var relay = await TestRelay.StartAsync(o =>
        {
            o.Submission.TrustedNetworks.Add("127.0.0.51/32");
            o.Limits.MessagesPerHour = 2;
            o.Limits.AuthFailuresBeforeDelay = 100; // no delays: they would wait on the fake clock
            o.Limits.AuthFailuresBeforeBlock = 2;
            o.Limits.AuthBlockDuration = TimeSpan.FromHours(1);
        }, s =>
        {
            CapturingStages.Register(s, stages);
            s.AddSingleton<TimeProvider>(clock);
        });
        relay.AddAccount("alice", "right password");
        var keys = relay.Host.Services.GetRequiredService<ClientKeys>();
        var sender = IPAddress.Parse("127.0.0.51");

        // Just before the rotation: the allowance is used up, and another network is blocked.
        clock.Advance(ClientKeys.Rotation - TimeSpan.FromMinutes(5));
        var before = keys.For(sender);
        await using (var dialog = await SmtpDialog.ConnectAsync(relay.PlainPort, address: "127.0.0.51"))
        {
            await dialog.CommandAsync("EHLO c");
            Assert.StartsWith("250", await AbuseControlTests.SubmitAsync(dialog, "r@example.org"));
            Assert.StartsWith("250", await AbuseControlTests.SubmitAsync(dialog, "r@example.org"));
        }
        await using (var guesser = await SmtpDialog.ConnectAsync(relay.ImplicitPort, implicitTls: true,
            address: "127.0.0.52"))
        {
            await guesser.CommandAsync("EHLO c");
            Assert.StartsWith("535", await guesser.CommandAsync(Plain("alice", "guess 1")));
            Assert.StartsWith("421 4.7.0", await guesser.CommandAsync(Plain("alice", "guess 2")));
        }

        // Just after it, both still hold.
        clock.Advance(TimeSpan.FromMinutes(10));
        Assert.NotEqual(before, keys.For(sender));
        await using (var dialog = await SmtpDialog.ConnectAsync(relay.PlainPort, address: "127.0.0.51"))
        {
            await dialog.CommandAsync("EHLO c");
            Assert.StartsWith("450 4.7.1", await AbuseControlTests.SubmitAsync(dialog, "r@example.org"));
        }
        await using (var again = await SmtpDialog.ConnectAsync(relay.StartTlsPort, address: "127.0.0.52"))
            Assert.StartsWith("421 4.7.0", again.Greeting);

        // They still end when their own time is up.
        clock.Advance(TimeSpan.FromHours(1));
        await using (var dialog = await SmtpDialog.ConnectAsync(relay.PlainPort, address: "127.0.0.51"))
        {
            await dialog.CommandAsync("EHLO c");
            Assert.StartsWith("250", await AbuseControlTests.SubmitAsync(dialog, "r@example.org"));
        }
        await using (var again = await SmtpDialog.ConnectAsync(relay.ImplicitPort, implicitTls: true,
            address: "127.0.0.52"))
        {
            await again.CommandAsync("EHLO c");
            Assert.StartsWith("235", await again.CommandAsync(Plain("alice", "right password")));
        }
    }

    [Fact]
    public void TheHashChangesDailyAndThePreviousOneIsKeptForOnePeriod()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 3, 1, 0, 0, 0, TimeSpan.Zero));
        var keys = new ClientKeys(clock);
        var address = IPAddress.Parse("192.0.2.1");
        var first = keys.Network(address);
        Assert.Null(first.Previous);
        Assert.Equal(first, keys.Network(address));
        Assert.NotEqual(first.Current, keys.Account("192.0.2.1").Current);

        clock.Advance(ClientKeys.Rotation);
        var second = keys.Network(address);
        Assert.NotEqual(first.Current, second.Current);
        Assert.Equal(first.Current, second.Previous);

        clock.Advance(ClientKeys.Rotation);
        var third = keys.Network(address);
        Assert.Equal(second.Current, third.Previous);
        Assert.NotEqual(first.Current, third.Previous);
    }

    internal static string Plain(string user, string password) =>
        "AUTH PLAIN " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"\0{user}\0{password}"));
}
