namespace Sombra.Queue;

/// <summary>
/// The durable queue. SQLite is the embedded store; a shared PostgreSQL store will implement
/// the same interface, so submission, anonymity and delivery never see which one runs.
/// </summary>
public interface IQueueStore : IAsyncDisposable
{
    /// <summary>Creates tables and directories, and recovers what a crash left half-written.</summary>
    Task InitializeAsync(CancellationToken cancellationToken);

    /// <summary>Starts a new message; its body is written to <see cref="IIncomingMessage.Body"/>.</summary>
    IIncomingMessage CreateIncoming();

    /// <summary>
    /// Makes the message and its record durable (fsync of data, rename, directory and database)
    /// and returns its queue id. Only after this returns may the client be told 250.
    /// </summary>
    Task<string> CommitAsync(IIncomingMessage message, QueueEnvelope envelope,
        CancellationToken cancellationToken);
}

/// <summary>A message being received. Disposing it without a commit discards it entirely.</summary>
public interface IIncomingMessage : IAsyncDisposable
{
    Stream Body { get; }
}

/// <summary>What the queue keeps besides the scrubbed body. Nothing here names the client.</summary>
/// <param name="Sender">The envelope sender that leaves (the anonymous address).</param>
/// <param name="Recipients">Envelope recipients, each tracked on its own.</param>
/// <param name="NotifyAddress">Where a bounce goes (the account's notification address), or null.</param>
/// <param name="TraceHeaders">Received values without their date; see <c>ScrubResult</c>.</param>
/// <param name="ReleaseAt">Earliest first delivery attempt (mixing delay); durable.</param>
public sealed record QueueEnvelope(
    string Sender,
    IReadOnlyList<string> Recipients,
    string? NotifyAddress,
    IReadOnlyList<string> TraceHeaders,
    DateTimeOffset ReleaseAt,
    bool Needs8BitMime,
    bool NeedsSmtpUtf8);
