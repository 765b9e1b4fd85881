using System.Diagnostics;
using Sombra.Tests.Support;

namespace Sombra.Tests.Submission;

/// <summary>The command timeout is a deadline per command, not a limit on each read.</summary>
public sealed class TimeoutTests : IAsyncLifetime
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(2);
    private TestRelay _relay = null!;

    public async ValueTask InitializeAsync() =>
        _relay = await TestRelay.StartAsync(o => o.Submission.CommandTimeout = CommandTimeout);

    public async ValueTask DisposeAsync() => await _relay.DisposeAsync();

    [Fact]
    public async Task ClientTricklingOneLineIsCutOffAtTheCommandDeadline()
    {
        await using var dialog = await SmtpDialog.ConnectAsync(_relay.PlainPort);
        Assert.StartsWith("250", await dialog.CommandAsync("EHLO client.example"));

        // A byte every 300 ms: each read comes well within the timeout, the line never ends.
        using var stop = new CancellationTokenSource();
        var trickle = Task.Run(async () =>
        {
            try
            {
                await dialog.SendAsync("NOOP");
                while (!stop.IsCancellationRequested)
                {
                    await Task.Delay(300, stop.Token);
                    await dialog.SendAsync("x");
                }
            }
            catch (Exception e) when (e is IOException or OperationCanceledException
                or ObjectDisposedException)
            {
                // The server closed the connection, or the test is done.
            }
        });
        var clock = Stopwatch.StartNew();
        var reply = await dialog.ReadReplyAsync(timeoutSeconds: 15);
        var waited = clock.Elapsed;
        await stop.CancelAsync();
        await trickle;

        Assert.StartsWith("421 4.4.2", reply);
        Assert.True(waited < CommandTimeout * 3, $"cut off after {waited.TotalSeconds:0.0} s");
        Assert.True(await dialog.ClosedAsync());
    }

    [Fact]
    public async Task EachCommandGetsItsOwnDeadline()
    {
        await using var dialog = await SmtpDialog.ConnectAsync(_relay.PlainPort);
        Assert.StartsWith("250", await dialog.CommandAsync("EHLO client.example"));

        // Together far longer than the timeout, each command well within it.
        for (var i = 0; i < 4; i++)
        {
            await Task.Delay(CommandTimeout / 2, TestContext.Current.CancellationToken);
            await dialog.SendAsync("NO");
            await Task.Delay(CommandTimeout / 4, TestContext.Current.CancellationToken);
            Assert.StartsWith("250 2.0.0", await dialog.CommandAsync("OP"));
        }
    }

    [Fact]
    public async Task StalledTlsHandshakeTimesOutAndTheServerGoesOn()
    {
        await using (var dialog = await SmtpDialog.ConnectAsync(_relay.StartTlsPort))
        {
            await dialog.CommandAsync("EHLO client.example");
            Assert.StartsWith("220 2.0.0", await dialog.CommandAsync("STARTTLS"));
            // No handshake follows: the server gives up at the command deadline.
            Assert.True(await dialog.ClosedAsync());
        }
        await WaitForLogAsync("closed (timeout)");

        await using var next = await SmtpDialog.ConnectAsync(_relay.StartTlsPort);
        Assert.StartsWith("250", await next.CommandAsync("EHLO client.example"));
    }

    private async Task WaitForLogAsync(string fragment)
    {
        for (var i = 0; i < 100 && !_relay.Logs.All.Contains(fragment); i++)
            await Task.Delay(100, TestContext.Current.CancellationToken);
        Assert.Contains(fragment, _relay.Logs.All);
    }
}
