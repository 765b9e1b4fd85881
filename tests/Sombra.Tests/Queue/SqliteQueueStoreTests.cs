using System.Text;
using Sombra.Queue;
using Xunit;

namespace Sombra.Tests.Queue;

public sealed class SqliteQueueStoreTests : IAsyncLifetime
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "sombra-store-" + Guid.NewGuid().ToString("N"));
    private readonly List<SqliteQueueStore> _stores = [];

    private SqliteQueueStore Open(int inlineLimit = SqliteQueueStore.DefaultInlineLimit, bool recover = true)
    {
        var store = new SqliteQueueStore(_data, inlineLimit: inlineLimit, recover: recover);
        _stores.Add(store);
        return store;
    }

    private static QueueEnvelope Envelope(params string[] recipients) =>
        new("anonymous@relay.test", recipients, "ops@notify.test", ["from relay.test by relay.test"],
            DateTimeOffset.UtcNow, false, false);

    private static async Task<string> Commit(IQueueStore store, string body, QueueEnvelope envelope)
    {
        await using var incoming = store.CreateIncoming();
        await incoming.Body.WriteAsync(Encoding.UTF8.GetBytes(body), TestContext.Current.CancellationToken);
        return await store.CommitAsync(incoming, envelope, TestContext.Current.CancellationToken);
    }

    private string QueueDir => Path.Combine(_data, "queue");

    [Theory]
    [InlineData(SqliteQueueStore.DefaultInlineLimit)] // inline in the record
    [InlineData(16)]                                   // as a file
    public async Task A_committed_message_reads_back_whole(int inlineLimit)
    {
        var ct = TestContext.Current.CancellationToken;
        var store = Open(inlineLimit);
        await store.InitializeAsync(ct);
        const string body = "Subject: hello\r\n\r\nbody line\r\n";
        var envelope = Envelope("a@one.test", "b@two.test");
        var id = await Commit(store, body, envelope);

        // A second process (the operator's) sees it too, from the database alone.
        var other = Open(recover: false);
        var message = await other.GetAsync(id, ct);
        Assert.NotNull(message);
        Assert.Equal(envelope.Sender, message.Envelope.Sender);
        Assert.Equal(envelope.Recipients, message.Envelope.Recipients);
        Assert.Equal(envelope.NotifyAddress, message.Envelope.NotifyAddress);
        Assert.Equal(envelope.TraceHeaders, message.Envelope.TraceHeaders);
        Assert.Equal(Encoding.UTF8.GetByteCount(body), message.BodySize);
        await using var stream = await other.OpenBodyAsync(id, ct);
        Assert.Equal(body, await new StreamReader(stream).ReadToEndAsync(ct));

        Assert.Equal(inlineLimit < body.Length, File.Exists(Path.Combine(QueueDir, id + ".eml")));
        Assert.Empty(Directory.GetFiles(QueueDir, "*.tmp"));
    }

    [Fact]
    public async Task Before_the_commit_there_is_only_a_temporary_file_and_no_record()
    {
        var ct = TestContext.Current.CancellationToken;
        var store = Open(inlineLimit: 16);
        await store.InitializeAsync(ct);
        await using var incoming = store.CreateIncoming();
        await incoming.Body.WriteAsync(new byte[1000], ct);

        Assert.Single(Directory.GetFiles(QueueDir, "*.tmp"));
        Assert.Empty(Directory.GetFiles(QueueDir, "*.eml"));
        Assert.Empty(await store.ListAsync(ct));
    }

    [Fact]
    public async Task A_message_disposed_without_commit_leaves_nothing()
    {
        var ct = TestContext.Current.CancellationToken;
        var store = Open(inlineLimit: 16);
        await store.InitializeAsync(ct);
        await using (var incoming = store.CreateIncoming())
            await incoming.Body.WriteAsync(new byte[1000], ct);
        Assert.Empty(Directory.GetFiles(QueueDir));
        Assert.Empty(await store.ListAsync(ct));
    }

    [Fact]
    public async Task Start_up_removes_half_written_files_and_keeps_committed_messages()
    {
        var ct = TestContext.Current.CancellationToken;
        var first = Open(inlineLimit: 16);
        await first.InitializeAsync(ct);
        var id = await Commit(first, "Subject: kept\r\n\r\n" + new string('x', 100) + "\r\n", Envelope("a@one.test"));
        await first.DisposeAsync();

        // What a crash leaves: a body still being received, and one renamed whose record never committed.
        File.WriteAllText(Path.Combine(QueueDir, "0123456789abcdef.tmp"), "half");
        File.WriteAllText(Path.Combine(QueueDir, "fedcba9876543210.eml"), "never acknowledged");

        // The operator's commands must not clean up: the files may belong to a live session.
        var op = Open(recover: false);
        await op.InitializeAsync(ct);
        Assert.Equal(3, Directory.GetFiles(QueueDir).Length);

        var second = Open(inlineLimit: 16);
        await second.InitializeAsync(ct);
        Assert.Equal([Path.Combine(QueueDir, id + ".eml")], Directory.GetFiles(QueueDir));
        Assert.NotNull(await second.GetAsync(id, ct));
    }

    [Fact]
    public async Task A_removal_after_delivery_is_flushed_soon_and_only_then_its_body_goes()
    {
        var ct = TestContext.Current.CancellationToken;
        var store = Open(inlineLimit: 16);
        await store.InitializeAsync(ct);
        var id = await Commit(store, "Subject: done\r\n\r\n" + new string('x', 100) + "\r\n", Envelope("a@one.test"));
        var body = Path.Combine(QueueDir, id + ".eml");

        await store.FinishAsync(id, ct);
        Assert.Null(await store.GetAsync(id, ct));
        // The body outlives the record until the removal is flushed, within the window.
        var deadline = DateTime.UtcNow + SqliteQueueStore.SoonWindow * 10;
        while (File.Exists(body) && DateTime.UtcNow < deadline)
            await Task.Delay(20, ct);
        Assert.False(File.Exists(body));

        // An operator's delete is flushed before it returns, and its body goes with it.
        var other = await Commit(store, "Subject: gone\r\n\r\n" + new string('x', 100) + "\r\n", Envelope("a@one.test"));
        Assert.True(await store.DeleteAsync(other, ct));
        Assert.False(File.Exists(Path.Combine(QueueDir, other + ".eml")));
    }

    [Fact]
    public async Task Removals_not_yet_flushed_are_flushed_at_shutdown()
    {
        var ct = TestContext.Current.CancellationToken;
        var first = Open();
        await first.InitializeAsync(ct);
        var id = await Commit(first, "Subject: done\r\n\r\nx\r\n", Envelope("a@one.test"));
        await first.FinishAsync(id, ct);
        await first.DisposeAsync();

        var second = Open();
        await second.InitializeAsync(ct);
        Assert.Null(await second.GetAsync(id, ct));
    }

    [Fact]
    public async Task A_storing_failure_throws_and_leaves_nothing_deliverable()
    {
        var ct = TestContext.Current.CancellationToken;
        var store = Open(inlineLimit: 16);
        await store.InitializeAsync(ct);
        await using var incoming = store.CreateIncoming();
        await incoming.Body.WriteAsync(new byte[1000], ct);
        // The temporary file vanishing stands in for an I/O error: the rename into place fails.
        foreach (var temp in Directory.GetFiles(QueueDir, "*.tmp"))
            File.Delete(temp);

        await Assert.ThrowsAsync<QueueStorageException>(() =>
            store.CommitAsync(incoming, Envelope("a@one.test"), ct));
        Assert.Empty(await store.ListAsync(ct));
        Assert.Empty(await store.FindDueAsync(DateTimeOffset.UtcNow, 10, ct));
        Assert.Empty(Directory.GetFiles(QueueDir));
    }

    [Fact]
    public async Task Concurrent_commits_are_all_durable_and_distinct()
    {
        var ct = TestContext.Current.CancellationToken;
        var store = Open();
        await store.InitializeAsync(ct);
        var ids = await Task.WhenAll(Enumerable.Range(0, 200).Select(i =>
            Task.Run(() => Commit(store, $"Subject: {i}\r\n\r\n{i}\r\n", Envelope($"r{i}@one.test")), ct)));
        await store.DisposeAsync();

        var reopened = Open();
        var listed = await reopened.ListAsync(ct);
        Assert.Equal(ids.Order(), listed.Select(m => m.Id).Order());
        Assert.Equal(200, ids.Distinct().Count());
    }

    [Fact]
    public async Task Outcomes_are_kept_per_recipient_and_decide_what_is_due()
    {
        var ct = TestContext.Current.CancellationToken;
        var store = Open();
        await store.InitializeAsync(ct);
        var now = DateTimeOffset.UtcNow;
        var held = await Commit(store, "Subject: held\r\n\r\nx\r\n",
            Envelope("a@one.test") with { ReleaseAt = now.AddHours(1) });
        var id = await Commit(store, "Subject: x\r\n\r\nx\r\n", Envelope("a@one.test", "b@one.test", "c@two.test"));

        var due = await store.FindDueAsync(now.AddSeconds(1), 10, ct);
        Assert.Equal([id], due.Select(d => d.Id));
        Assert.Equal(held, (await store.FindDueAsync(now.AddHours(2), 10, ct))[1].Id);

        await store.RecordAsync(id, [
            new RecipientOutcome(0, RecipientState.Delivered, null, "250 ok"),
            new RecipientOutcome(1, RecipientState.Failed, null, "550 5.1.1 no"),
            new RecipientOutcome(2, RecipientState.Pending, now.AddMinutes(5), "451 4.2.0 later"),
        ], ct);

        var message = (await store.GetAsync(id, ct))!;
        Assert.Equal([RecipientState.Delivered, RecipientState.Failed, RecipientState.Pending],
            message.Recipients.Select(r => r.State));
        Assert.All(message.Recipients, r => Assert.Equal(1, r.Attempts));
        Assert.Equal("451 4.2.0 later", message.Recipients[2].LastError);
        Assert.Empty(await store.FindDueAsync(now.AddMinutes(4), 10, ct));
        Assert.Equal(now.AddMinutes(5).ToUnixTimeMilliseconds(),
            (await store.NextDueAsync(ct))!.Value.ToUnixTimeMilliseconds());

        // A retry makes it due now, but never cuts the mixing hold of the other message.
        Assert.Equal(2, await store.RetryAsync(null, now.AddMinutes(1), ct));
        Assert.Equal([id], (await store.FindDueAsync(now.AddMinutes(1), 10, ct)).Select(d => d.Id));

        // A claimed message is not offered twice.
        Assert.NotNull(await store.ClaimAsync(id, ct));
        Assert.Null(await store.ClaimAsync(id, ct));
        Assert.Empty(await store.FindDueAsync(now.AddMinutes(1), 10, ct));
        store.Release(id);

        await store.RecordAsync(id, [new RecipientOutcome(2, RecipientState.Delivered, null, "250 ok")], ct);
        // No recipient pending: offered once more, to be reported and removed.
        Assert.Contains(id, (await store.FindDueAsync(now, 10, ct)).Select(d => d.Id));
        await store.FinishAsync(id, ct);
        Assert.Null(await store.GetAsync(id, ct));
    }

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        foreach (var store in _stores)
            await store.DisposeAsync();
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
