using Sombra.Tests.Support;
using static Sombra.Tests.Submission.KeyRotationTests;

namespace Sombra.Tests.Submission;

/// <summary>AUTH throttling under parallel connections, through the real server.</summary>
public sealed class AuthLimitTests
{
    private static async Task<SmtpDialog[]> ConnectAsync(TestRelay relay, int count, string address) =>
        await Task.WhenAll(Enumerable.Range(0, count).Select(async _ =>
        {
            var dialog = await SmtpDialog.ConnectAsync(relay.ImplicitPort, implicitTls: true, address: address);
            Assert.StartsWith("250", await dialog.CommandAsync("EHLO c"));
            return dialog;
        }));

    private static int PasswordsChecked(TestRelay relay) =>
        relay.Logs.Lines.Count(l => l.Contains("authentication failed"));

    [Fact]
    public async Task ParallelConnectionsGetNoMorePasswordsCheckedThanTheLimit()
    {
        var stages = new CapturingStages();
        await using var relay = await TestRelay.StartAsync(o =>
        {
            o.Limits.AuthFailuresBeforeDelay = 3;
            o.Limits.AuthFailureDelay = TimeSpan.FromMilliseconds(100);
            o.Limits.AuthFailuresBeforeBlock = 10;
        }, s => CapturingStages.Register(s, stages));
        relay.AddAccount("alice", "right password");

        var dialogs = await ConnectAsync(relay, 19, "127.0.1.70");
        try
        {
            var replies = await Task.WhenAll(dialogs.Select((d, i) => d.CommandAsync(Plain("alice", $"guess {i}"))));
            Assert.Equal(10, PasswordsChecked(relay));
            // The tenth failure shuts the network out; the others were told to come back (454)
            // or, if they came late, shut out too.
            Assert.Equal(9, replies.Count(r => r.StartsWith("535 5.7.8")));
            Assert.All(replies.Where(r => !r.StartsWith("535")), r => Assert.Matches("^(421|454) 4.7.0", r));
            Assert.Contains(replies, r => r.StartsWith("421"));
            foreach (var dialog in dialogs.Where((_, i) => replies[i].StartsWith("454")))
                Assert.StartsWith("421 4.7.0", await dialog.CommandAsync(Plain("alice", "right password")));
            Assert.Equal(10, PasswordsChecked(relay));
        }
        finally
        {
            foreach (var dialog in dialogs)
                await dialog.DisposeAsync();
        }
    }

    [Fact]
    public async Task ASuccessDoesNotCountAsAFailure()
    {
        var stages = new CapturingStages();
        await using var relay = await TestRelay.StartAsync(o =>
        {
            o.Limits.AuthFailuresBeforeDelay = 100;
            o.Limits.AuthFailuresBeforeBlock = 2;
        }, s => CapturingStages.Register(s, stages));
        relay.AddAccount("alice", "right password");

        var dialogs = await ConnectAsync(relay, 4, "127.0.1.71");
        try
        {
            foreach (var dialog in dialogs[..3])
                Assert.StartsWith("235", await dialog.CommandAsync(Plain("alice", "right password")));
            Assert.StartsWith("535", await dialogs[3].CommandAsync(Plain("alice", "typo")));
            Assert.StartsWith("235", await dialogs[3].CommandAsync(Plain("alice", "right password")));
        }
        finally
        {
            foreach (var dialog in dialogs)
                await dialog.DisposeAsync();
        }
    }
}
