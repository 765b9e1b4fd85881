namespace Sombra.Anonymity;

/// <summary>
/// One removal or rewrite, for <c>sombra scrub --report</c>. Collected only when asked for:
/// a value is a header value of the original and must never reach a log.
/// </summary>
/// <param name="Where">"message", "part 2.1", or "message in part 2" and so on.</param>
/// <param name="Header">The header name (or "boundary", "preamble", "epilogue").</param>
/// <param name="Action">"removed", "rewritten" or "reduced".</param>
/// <param name="Why">A short reason.</param>
/// <param name="Value">The original value, or null.</param>
public sealed record ScrubNote(string Where, string Header, string Action, string Why, string? Value);
