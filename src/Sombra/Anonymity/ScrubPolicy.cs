namespace Sombra.Anonymity;

/// <summary>The settings the stage applies, resolved once from the configuration.</summary>
internal sealed record ScrubPolicy(
    string HostName,
    string SenderAddress,
    string? SenderName,
    IReadOnlySet<string> KeepHeaders,
    string? Disclosure,
    int MaxNestingDepth,
    int MaxParts)
{
    /// <summary>A header block above this is refused: no client writes one, and MimeKit buffers it.</summary>
    public const int MaxHeaderBlockBytes = 1024 * 1024;
}
