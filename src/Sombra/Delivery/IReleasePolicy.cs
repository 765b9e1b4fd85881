using Sombra.Queue;

namespace Sombra.Delivery;

/// <summary>
/// The one place that decides which due messages leave now. The default releases everything due
/// (a mixing delay is already in each message's durable release time); a pool mix (issue #6)
/// replaces it and holds first attempts back until its interval and pool size say otherwise.
/// </summary>
public interface IReleasePolicy
{
    /// <param name="candidates">Due messages, oldest first; <c>Attempts == 0</c> means never tried.</param>
    IReadOnlyList<DueMessage> Select(IReadOnlyList<DueMessage> candidates, DateTimeOffset now);
}

public sealed class ReleaseWhenDue : IReleasePolicy
{
    public IReadOnlyList<DueMessage> Select(IReadOnlyList<DueMessage> candidates, DateTimeOffset now) => candidates;
}
