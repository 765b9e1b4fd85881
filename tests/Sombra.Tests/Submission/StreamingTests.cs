using Sombra.Anonymity;
using Sombra.Queue;
using Sombra.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Sombra.Tests.Submission;

/// <summary>A 100 MiB message streams through the server; it is never held whole.</summary>
[Collection(SerialCollection.Name)]
public sealed class StreamingTests
{
    /// <summary>Counts what it is handed and keeps none of it.</summary>
    private sealed class CountingStages : IAnonymizer, IQueueStore
    {
        public long Received;

        public async Task<ScrubResult> ScrubAsync(Stream original, Stream scrubbed, SessionFacts facts,
            CancellationToken cancellationToken)
        {
            var buffer = new byte[64 * 1024];
            int read;
            while ((read = await original.ReadAsync(buffer, cancellationToken)) > 0)
                Received += read;
            return new ScrubResult(null, [], false, false);
        }

        public Task InitializeAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public IIncomingMessage CreateIncoming() => new Nothing();
        public Task<string> CommitAsync(IIncomingMessage message, QueueEnvelope envelope, CancellationToken c) =>
            Task.FromResult("counted");
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;

        private sealed class Nothing : IIncomingMessage
        {
            public Stream Body => Stream.Null;
            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }

    [Fact]
    public async Task HundredMebibyteMessageAllocatesFarLessThanItsSize()
    {
        var stages = new CountingStages();
        await using var relay = await TestRelay.StartAsync(o =>
        {
            o.Submission.TrustedNetworks.Add("127.0.0.1/32");
            o.Submission.MaxMessageSize = 200L << 20;
        }, s =>
        {
            s.AddSingleton<IAnonymizer>(stages);
            s.AddSingleton<IQueueStore>(stages);
        });
        await using var dialog = await SmtpDialog.ConnectAsync(relay.PlainPort);
        await dialog.CommandAsync("EHLO c");
        await dialog.CommandAsync("MAIL FROM:<a@b.example>");
        await dialog.CommandAsync("RCPT TO:<c@example.org>");
        Assert.StartsWith("354", await dialog.CommandAsync("DATA"));

        // 76-octet lines as base64 attachments have; one buffer, sent again and again.
        var line = System.Text.Encoding.ASCII.GetBytes(new string('Q', 76) + "\r\n");
        var chunk = Enumerable.Repeat(line, 64 * 1024 / line.Length).SelectMany(b => b).ToArray();
        var total = 100L << 20;
        GC.Collect();
        var idle = ResidentMemory.ResetPeak();
        for (long sent = 0; sent < total; sent += chunk.Length)
            await dialog.SendAsync(chunk);
        await dialog.SendAsync(".\r\n");
        Assert.StartsWith("250", await dialog.ReadReplyAsync(120));
        var growth = ResidentMemory.Peak() - idle;

        TestContext.Current.TestOutputHelper?.WriteLine($"peak resident growth {growth >> 20} MiB");
        Assert.True(stages.Received >= total);
        Assert.True(growth < 32L << 20, $"resident memory grew {growth >> 20} MiB for a {total >> 20} MiB message");
    }
}
