using Sombra.Hosting;

namespace Sombra.Delivery;

/// <summary>When a deferred recipient is tried again: each of Delivery:RetryDelays in turn, then the last one
/// again, until Delivery:MaxQueueLifetime after the message arrived.</summary>
public sealed class RetrySchedule(DeliveryOptions options)
{
    /// <summary>The wait after the first failure.</summary>
    public TimeSpan First => options.RetryDelays.Count == 0 ? TimeSpan.FromMinutes(1) : options.RetryDelays[0];

    /// <summary>
    /// The recorded error of a recipient given up on: RFC 3463's "delivery time expired" first,
    /// for the report's Status, then the last reply, for its Diagnostic-Code.
    /// </summary>
    public static string Expired(string lastReply) =>
        $"5.4.7 gave up after Delivery:MaxQueueLifetime; {LastReplyMarker}{lastReply}";

    public const string LastReplyMarker = "last reply: ";

    /// <param name="attempts">Attempts made, counting the one that just failed.</param>
    /// <returns>The next attempt, or null when the lifetime is over and the failure is final.</returns>
    public DateTimeOffset? Next(int attempts, DateTimeOffset createdAt, DateTimeOffset now)
    {
        var expiry = createdAt + options.MaxQueueLifetime;
        if (now >= expiry)
            return null;
        var delays = options.RetryDelays;
        var delay = delays.Count == 0 ? TimeSpan.FromHours(4) : delays[Math.Clamp(attempts - 1, 0, delays.Count - 1)];
        var next = now + delay;
        // One last attempt at the deadline rather than giving up early.
        return next < expiry ? next : expiry;
    }
}
