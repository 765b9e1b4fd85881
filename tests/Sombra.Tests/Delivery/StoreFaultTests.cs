using Sombra.Queue;
using Sombra.Tests.Support;

namespace Sombra.Tests.Delivery;

/// <summary>
/// When the store cannot record what the next hop answered (a full or failing disk), the message
/// stays queued and is sent again only after a retry delay, not in a loop: a failing disk must
/// not turn into a flood of copies at the recipient.
/// </summary>
public sealed class StoreFaultTests
{
    [Fact]
    public async Task An_outcome_that_cannot_be_recorded_does_not_resend_at_once()
    {
        using var sink = new AiosmtpdSink();
        var failing = true;
        await using var relay = Relay.ToSink(sink, o => o.Delivery.RetryDelays = [TimeSpan.FromSeconds(3)],
            wrap: store => new FailingWrites(store, () => failing));
        await relay.StartAsync();
        var id = await relay.SubmitAsync("Subject: once\r\n\r\nbody\r\n", ["someone@far.test"]);

        await sink.WaitForAsync(1);
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.Single(sink.Messages());

        // Once the store works again, the message goes once more (at least once: the first copy
        // was never recorded) and is then removed.
        failing = false;
        await relay.WaitAsync(id, m => m is null, seconds: 15);
        Assert.Equal(2, sink.Messages().Count);
    }

    /// <summary>The real store, with its outcome writes failing while <c>fail</c> says so.</summary>
    private sealed class FailingWrites(IDeliveryQueue inner, Func<bool> fail) : IDeliveryQueue
    {
        public event Action? WorkAvailable
        {
            add => inner.WorkAvailable += value;
            remove => inner.WorkAvailable -= value;
        }

        private Task FailOr(Func<Task> write) =>
            fail() ? throw new QueueStorageException("the disk is full (simulated)") : write();

        public Task RecordAsync(string id, IReadOnlyList<RecipientOutcome> outcomes, CancellationToken ct) =>
            FailOr(() => inner.RecordAsync(id, outcomes, ct));
        public Task FinishAsync(string id, CancellationToken ct) => FailOr(() => inner.FinishAsync(id, ct));

        public IIncomingMessage CreateIncoming() => inner.CreateIncoming();
        public Task<string> CommitAsync(IIncomingMessage message, QueueEnvelope envelope, CancellationToken ct) =>
            inner.CommitAsync(message, envelope, ct);
        public Task InitializeAsync(CancellationToken ct) => inner.InitializeAsync(ct);
        public Task<IReadOnlyList<DueMessage>> FindDueAsync(DateTimeOffset now, int limit, CancellationToken ct) =>
            inner.FindDueAsync(now, limit, ct);
        public Task<DateTimeOffset?> NextDueAsync(CancellationToken ct) => inner.NextDueAsync(ct);
        public Task<IReadOnlyList<DueMessage>> FindPooledAsync(DateTimeOffset now, CancellationToken ct) =>
            inner.FindPooledAsync(now, ct);
        public Task ReleasePooledAsync(IReadOnlyList<string> ids, CancellationToken ct) => inner.ReleasePooledAsync(ids, ct);
        public (long Depth, DateTimeOffset? Oldest) Depth() => inner.Depth();
        public Task<QueuedMessage?> ClaimAsync(string id, CancellationToken ct) => inner.ClaimAsync(id, ct);
        public void Release(string id) => inner.Release(id);
        public Task<Stream> OpenBodyAsync(string id, CancellationToken ct) => inner.OpenBodyAsync(id, ct);
        public Task<IReadOnlyList<QueuedMessage>> ListAsync(CancellationToken ct) => inner.ListAsync(ct);
        public Task<QueuedMessage?> GetAsync(string id, CancellationToken ct) => inner.GetAsync(id, ct);
        public Task<int> RetryAsync(string? id, DateTimeOffset now, CancellationToken ct) => inner.RetryAsync(id, now, ct);
        public Task<bool> DeleteAsync(string id, CancellationToken ct) => inner.DeleteAsync(id, ct);
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
