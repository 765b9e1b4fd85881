namespace Sombra.Anonymity;

/// <summary>
/// The pure rewrite stage: reads the original message (unstuffed DATA bytes, CRLF lines) and
/// writes the scrubbed one. It does no I/O of its own beyond the two streams it is given.
/// </summary>
public interface IAnonymizer
{
    /// <summary>
    /// Streams <paramref name="original"/> into <paramref name="scrubbed"/>. The output holds no
    /// Received and no Date header: those are written at release (see <see cref="ScrubResult"/>).
    /// Implementations read <paramref name="original"/> to its end even when they refuse; after a
    /// refusal what was written to <paramref name="scrubbed"/> is incomplete and must be discarded.
    /// The input must have CRLF line ends only: a bare CR or LF is refused.
    /// </summary>
    Task<ScrubResult> ScrubAsync(Stream original, Stream scrubbed, SessionFacts facts,
        CancellationToken cancellationToken);
}

/// <summary>The outcome of one scrub.</summary>
/// <param name="Refusal">Null when accepted; otherwise the reason for <c>554 5.6.0</c>.</param>
/// <param name="TraceHeaders">
/// The Received header values Sombra adds (top first), each lacking only its "; date" part,
/// which the delivery stage appends at release time.
/// </param>
/// <param name="Needs8BitMime">The output has 8-bit content.</param>
/// <param name="NeedsSmtpUtf8">The output has UTF-8 in its headers.</param>
public sealed record ScrubResult(
    string? Refusal,
    IReadOnlyList<string> TraceHeaders,
    bool Needs8BitMime,
    bool NeedsSmtpUtf8)
{
    public bool Accepted => Refusal is null;

    public static ScrubResult Refused(string reason) => new(reason, [], false, false);
}
