using Sombra.Queue;

namespace Sombra.Delivery;

public enum Outcome { Delivered, Temporary, Permanent }

/// <summary>What one attempt gave for one recipient; Detail is the reply or the reason.</summary>
public sealed record RecipientResult(int Index, Outcome Outcome, string Detail);

/// <summary>A message ready to leave: its record, the release headers and a way to read its body.</summary>
/// <param name="Prefix">The Received and Date headers written at release (ReleaseStamp).</param>
/// <param name="EndsWithCrlf">From <see cref="BodyCheck"/>; the body has no bare CR or LF.</param>
public sealed record Outbound(
    QueuedMessage Message,
    byte[] Prefix,
    Func<CancellationToken, Task<Stream>> OpenBody,
    bool EndsWithCrlf);

/// <summary>Hands one message to the next hop for some of its recipients (all at one domain).</summary>
public interface IDeliveryTransport : IAsyncDisposable
{
    /// <summary>One result per recipient given. Throws only when <paramref name="cancellationToken"/> fires.</summary>
    Task<IReadOnlyList<RecipientResult>> SendAsync(Outbound outbound, string domain,
        IReadOnlyList<QueuedRecipient> recipients, CancellationToken cancellationToken);
}
