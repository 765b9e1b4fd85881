using Sombra.Tests.Support;
using static Sombra.Tests.Submission.AbuseControlTests;
using static Sombra.Tests.Submission.KeyRotationTests;

namespace Sombra.Tests.Submission;

/// <summary>
/// Rate limits are taken at MAIL and RCPT, so parallel sessions cannot all pass the check
/// before any is counted, and given back when a transaction ends without a queued message.
/// </summary>
public sealed class RateLimitTests
{
    private static async Task<SmtpDialog[]> ConnectAsync(TestRelay relay, int count, Func<int, string> address,
        string? account = null)
    {
        return await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
        {
            var dialog = account is null
                ? await SmtpDialog.ConnectAsync(relay.PlainPort, address: address(i))
                : await SmtpDialog.ConnectAsync(relay.ImplicitPort, implicitTls: true, address: address(i));
            await dialog.CommandAsync("EHLO c");
            if (account is not null)
                Assert.StartsWith("235", await dialog.CommandAsync(Plain(account, "pass")));
            return dialog;
        }));
    }

    private static async Task DisposeAllAsync(IEnumerable<SmtpDialog> dialogs)
    {
        foreach (var dialog in dialogs)
            await dialog.DisposeAsync();
    }

    [Fact]
    public async Task ParallelSessionsOnOneAccountTakeNoMoreMessagesThanTheLimit()
    {
        var stages = new CapturingStages();
        await using var relay = await TestRelay.StartAsync(o => o.Limits.MessagesPerHour = 2,
            s => CapturingStages.Register(s, stages));
        relay.AddAccount("alice", "pass");
        // Ten networks, so that only the account's own limit can stop them.
        var dialogs = await ConnectAsync(relay, 10, i => $"127.0.1.{10 + i}", "alice");
        try
        {
            var replies = await Task.WhenAll(dialogs.Select(d => d.CommandAsync("MAIL FROM:<a@client.example>")));
            Assert.Equal(2, replies.Count(r => r.StartsWith("250")));
            Assert.All(replies.Where(r => !r.StartsWith("250")), r => Assert.StartsWith("450 4.7.1", r));

            var admitted = dialogs.Where((_, i) => replies[i].StartsWith("250")).ToArray();
            foreach (var dialog in admitted)
            {
                Assert.StartsWith("250", await dialog.CommandAsync("RCPT TO:<r@example.org>"));
                await dialog.CommandAsync("DATA");
                await dialog.SendAsync("Subject: s\r\n\r\nx\r\n.\r\n");
                Assert.StartsWith("250", await dialog.ReadReplyAsync());
            }
            Assert.Equal(2, stages.Committed.Count);
            Assert.StartsWith("450 4.7.1", await dialogs[^1].CommandAsync("MAIL FROM:<a@client.example>"));
        }
        finally
        {
            await DisposeAllAsync(dialogs);
        }
    }

    [Fact]
    public async Task ParallelSessionsFromOneNetworkTakeNoMoreRecipientsThanTheLimit()
    {
        var stages = new CapturingStages();
        await using var relay = await TestRelay.StartAsync(o =>
        {
            o.Submission.TrustedNetworks.Add("127.0.0.0/8");
            o.Limits.RecipientsPerHour = 3;
        }, s => CapturingStages.Register(s, stages));
        var dialogs = await ConnectAsync(relay, 10, _ => "127.0.1.30");
        try
        {
            foreach (var dialog in dialogs)
                Assert.StartsWith("250", await dialog.CommandAsync("MAIL FROM:<a@client.example>"));
            var replies = await Task.WhenAll(dialogs.Select(d => d.CommandAsync("RCPT TO:<r@example.org>")));
            Assert.Equal(3, replies.Count(r => r.StartsWith("250")));
            Assert.All(replies.Where(r => !r.StartsWith("250")), r => Assert.StartsWith("450 4.7.1", r));
        }
        finally
        {
            await DisposeAllAsync(dialogs);
        }
    }

    [Fact]
    public async Task PerAccountLimitFollowsTheAccountAcrossNetworks()
    {
        var stages = new CapturingStages();
        await using var relay = await TestRelay.StartAsync(o => o.Limits.MessagesPerHour = 2,
            s => CapturingStages.Register(s, stages));
        relay.AddAccount("alice", "pass");
        relay.AddAccount("bob", "pass");

        var first = (await ConnectAsync(relay, 1, _ => "127.0.1.41", "alice"))[0];
        var second = (await ConnectAsync(relay, 1, _ => "127.0.1.42", "alice"))[0];
        var bob = (await ConnectAsync(relay, 1, _ => "127.0.1.41", "bob"))[0];
        try
        {
            Assert.StartsWith("250", await SubmitAsync(first, "r@example.org"));
            Assert.StartsWith("250", await SubmitAsync(second, "r@example.org"));
            // Each network has sent one of its two: only the account's own limit refuses this.
            Assert.StartsWith("450 4.7.1", await SubmitAsync(second, "r@example.org"));
            Assert.StartsWith("450 4.7.1", await SubmitAsync(first, "r@example.org"));
            // Another account on the first network still has the network's second message.
            Assert.StartsWith("250", await SubmitAsync(bob, "r@example.org"));
        }
        finally
        {
            await DisposeAllAsync([first, second, bob]);
        }
    }

    [Fact]
    public async Task WhatATransactionDidNotUseIsGivenBack()
    {
        var stages = new CapturingStages();
        await using var relay = await TestRelay.StartAsync(o =>
        {
            o.Submission.TrustedNetworks.Add("127.0.0.0/8");
            o.Limits.MessagesPerHour = 1;
        }, s => CapturingStages.Register(s, stages));
        var d = await ConnectAsync(relay, 3, _ => "127.0.1.50");
        const string mail = "MAIL FROM:<a@client.example>";
        try
        {
            // MAIL takes the one message; RSET gives it back.
            Assert.StartsWith("250", await d[0].CommandAsync(mail));
            Assert.StartsWith("450 4.7.1", await d[1].CommandAsync(mail));
            Assert.StartsWith("250", await d[0].CommandAsync("RSET"));
            Assert.StartsWith("250", await d[1].CommandAsync(mail));

            // A message refused at DATA (smuggling 550, a scrub refusal 554, a store failure
            // 451) gives it back.
            Assert.StartsWith("250", await d[1].CommandAsync("RCPT TO:<r@example.org>"));
            await d[1].CommandAsync("DATA");
            await d[1].SendAsync("Subject: s\r\n\r\nx\n.\nMAIL FROM:<b@x>\r\n.\r\n");
            Assert.StartsWith("550", await d[1].ReadReplyAsync());
            stages.Refuse = "signed";
            Assert.StartsWith("554", await SubmitAsync(d[2], "r@example.org"));
            stages.Refuse = null;
            stages.FailCommits = true;
            Assert.StartsWith("451", await SubmitAsync(d[2], "r@example.org"));
            stages.FailCommits = false;

            // A session that goes away in the middle gives it back.
            Assert.StartsWith("250", await d[2].CommandAsync(mail));
            await d[2].DisposeAsync();
            var reply = "";
            for (var i = 0; i < 50 && !reply.StartsWith("250"); i++)
            {
                await Task.Delay(100);
                reply = await d[0].CommandAsync(mail);
            }
            Assert.StartsWith("250", reply);

            // A queued message keeps it.
            Assert.StartsWith("250", await d[0].CommandAsync("RCPT TO:<r@example.org>"));
            await d[0].CommandAsync("DATA");
            await d[0].SendAsync("Subject: s\r\n\r\nx\r\n.\r\n");
            Assert.StartsWith("250", await d[0].ReadReplyAsync());
            Assert.StartsWith("450 4.7.1", await d[1].CommandAsync(mail));
        }
        finally
        {
            await DisposeAllAsync(d);
        }
    }

    [Fact]
    public async Task RecipientsOfAnAbandonedTransactionAreGivenBack()
    {
        var stages = new CapturingStages();
        await using var relay = await TestRelay.StartAsync(o =>
        {
            o.Submission.TrustedNetworks.Add("127.0.0.0/8");
            o.Limits.RecipientsPerHour = 2;
        }, s => CapturingStages.Register(s, stages));
        var d = await ConnectAsync(relay, 2, _ => "127.0.1.60");
        try
        {
            Assert.StartsWith("250", await d[0].CommandAsync("MAIL FROM:<a@client.example>"));
            Assert.StartsWith("250", await d[0].CommandAsync("RCPT TO:<a@example.org>"));
            Assert.StartsWith("250", await d[0].CommandAsync("RCPT TO:<b@example.org>"));
            Assert.StartsWith("250", await d[1].CommandAsync("MAIL FROM:<a@client.example>"));
            Assert.StartsWith("450 4.7.1", await d[1].CommandAsync("RCPT TO:<c@example.org>"));
            await d[0].CommandAsync("RSET");
            Assert.StartsWith("250", await d[1].CommandAsync("RCPT TO:<c@example.org>"));
        }
        finally
        {
            await DisposeAllAsync(d);
        }
    }
}
