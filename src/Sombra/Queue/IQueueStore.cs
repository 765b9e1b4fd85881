namespace Sombra.Queue;

/// <summary>
/// What submission sees of the queue: a message goes in, durably, and nothing else.
/// </summary>
public interface IQueueWriter
{
    /// <summary>Starts a new message; its body is written to <see cref="IIncomingMessage.Body"/>.</summary>
    IIncomingMessage CreateIncoming();

    /// <summary>
    /// Makes the message and its record durable (fsync of data, rename, directory and database)
    /// and returns its queue id. Only after this returns may the client be told 250. A failure
    /// throws <see cref="QueueStorageException"/> and leaves nothing deliverable behind.
    /// </summary>
    Task<string> CommitAsync(IIncomingMessage message, QueueEnvelope envelope,
        CancellationToken cancellationToken);
}

/// <summary>
/// The durable queue. SQLite is the embedded store; a shared PostgreSQL store will implement
/// the same interface, so submission, anonymity and delivery never see which one runs.
/// </summary>
public interface IQueueStore : IQueueWriter, IAsyncDisposable
{
    /// <summary>Creates tables and directories, and recovers what a crash left half-written.</summary>
    Task InitializeAsync(CancellationToken cancellationToken);
}

/// <summary>
/// The rest of the queue: what delivery and the operator commands need. Split from
/// <see cref="IQueueStore"/> so that submission depends only on storing; every store implements
/// both (a PostgreSQL store claims rows with <c>FOR UPDATE SKIP LOCKED</c> behind the same calls).
/// </summary>
public interface IDeliveryQueue : IQueueStore
{
    /// <summary>Raised after a commit or an operator retry, so that delivery need not wait for a poll.</summary>
    event Action? WorkAvailable;

    /// <summary>
    /// Messages that have work now: a pending recipient whose attempt time and release time have
    /// come, or no pending recipient left (a finished message still to be reported and removed).
    /// Messages claimed by this relay are left out. Oldest release first.
    /// </summary>
    Task<IReadOnlyList<DueMessage>> FindDueAsync(DateTimeOffset now, int limit, CancellationToken cancellationToken);

    /// <summary>
    /// The earliest time at which a pending recipient of a message not held in the pool becomes
    /// due, or null when none waits.
    /// </summary>
    Task<DateTimeOffset?> NextDueAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Messages held in the mixing pool (<see cref="QueueEnvelope.Pooled"/>) whose mixing delay has
    /// passed, oldest first: what a pool round chooses from. Held messages are never due.
    /// </summary>
    Task<IReadOnlyList<DueMessage>> FindPooledAsync(DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Lets pooled messages go: durably, so a restart does not put them back in the pool.</summary>
    Task ReleasePooledAsync(IReadOnlyList<string> ids, CancellationToken cancellationToken);

    /// <summary>Queue depth and the oldest message's (hour-rounded) arrival, read at metrics scrape time.</summary>
    (long Depth, DateTimeOffset? Oldest) Depth();

    /// <summary>
    /// Takes a message for delivery by this relay; null when it is gone or already claimed.
    /// The claim ends with <see cref="Release"/>; a crash ends it too.
    /// </summary>
    Task<QueuedMessage?> ClaimAsync(string id, CancellationToken cancellationToken);

    /// <remarks>Synchronous because the embedded store's claims live in memory; a shared store
    /// whose claims are leases in the database ends them lazily (the lease expires).</remarks>
    void Release(string id);

    /// <summary>
    /// The stored (scrubbed) body, without the release headers. The stream is seekable: delivery
    /// checks it, then sends it, and a retry on another connection reads it again.
    /// </summary>
    Task<Stream> OpenBodyAsync(string id, CancellationToken cancellationToken);

    /// <summary>Makes recipients' outcomes durable; returns when they are committed.</summary>
    Task RecordAsync(string id, IReadOnlyList<RecipientOutcome> outcomes, CancellationToken cancellationToken);

    /// <summary>Removes a message whose recipients are all final (record and body).</summary>
    Task FinishAsync(string id, CancellationToken cancellationToken);

    /// <summary>Every queued message, for <c>sombra queue list</c>.</summary>
    Task<IReadOnlyList<QueuedMessage>> ListAsync(CancellationToken cancellationToken);

    Task<QueuedMessage?> GetAsync(string id, CancellationToken cancellationToken);

    /// <summary>Makes pending recipients due now (one message, or all when id is null); returns the count.</summary>
    Task<int> RetryAsync(string? id, DateTimeOffset now, CancellationToken cancellationToken);

    Task<bool> DeleteAsync(string id, CancellationToken cancellationToken);
}

/// <summary>A message being received. Disposing it without a commit discards it entirely.</summary>
public interface IIncomingMessage : IAsyncDisposable
{
    Stream Body { get; }
}

/// <summary>What the queue keeps besides the scrubbed body. Nothing here names the client.</summary>
/// <param name="Sender">The envelope sender that leaves (the anonymous address); "" is the null sender.</param>
/// <param name="Recipients">Envelope recipients, each tracked on its own.</param>
/// <param name="NotifyAddress">Where a bounce goes (the account's notification address), or null.</param>
/// <param name="TraceHeaders">Received values without their date; see <c>ScrubResult</c>.</param>
/// <param name="ReleaseAt">Earliest first delivery attempt (mixing delay); durable.</param>
/// <param name="Pooled">Held in the mixing pool after ReleaseAt until a pool round lets it go.</param>
public sealed record QueueEnvelope(
    string Sender,
    IReadOnlyList<string> Recipients,
    string? NotifyAddress,
    IReadOnlyList<string> TraceHeaders,
    DateTimeOffset ReleaseAt,
    bool Needs8BitMime,
    bool NeedsSmtpUtf8,
    bool Pooled = false);

/// <summary>Storing failed (disk full, I/O error); the client is told 451 4.3.0.</summary>
public sealed class QueueStorageException(string message, Exception? inner = null) : IOException(message, inner);

public enum RecipientState { Pending = 0, Delivered = 1, Failed = 2 }

/// <summary>One recipient of a queued message and where its delivery stands.</summary>
public sealed record QueuedRecipient(
    int Index,
    string Address,
    RecipientState State,
    int Attempts,
    DateTimeOffset NextAttempt,
    string? LastError);

/// <summary>A queued message: its envelope and every recipient's state.</summary>
public sealed record QueuedMessage(
    string Id,
    DateTimeOffset CreatedAt,
    QueueEnvelope Envelope,
    IReadOnlyList<QueuedRecipient> Recipients,
    long BodySize);

/// <summary>A candidate for delivery now; what the release policy chooses from.</summary>
/// <param name="Attempts">Attempts so far (0: never tried, still held by mixing until released).</param>
public sealed record DueMessage(string Id, DateTimeOffset CreatedAt, DateTimeOffset ReleaseAt, int Attempts);

/// <summary>The result of one attempt for one recipient.</summary>
/// <param name="NextAttempt">For a deferral: when to try again.</param>
/// <param name="Error">The reply or reason, shown by <c>sombra queue list</c> and put in a DSN.</param>
public sealed record RecipientOutcome(int Index, RecipientState State, DateTimeOffset? NextAttempt, string? Error);
