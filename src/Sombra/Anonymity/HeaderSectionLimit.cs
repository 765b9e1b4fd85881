namespace Sombra.Anonymity;

/// <summary>
/// Counts the bytes of the header section being read and refuses one past
/// <see cref="ScrubPolicy.MaxHeaderBlockBytes"/> as the input arrives. MimeKit gathers a whole
/// header field before it reports it, regrowing its buffer as it goes, so a field folded over
/// millions of lines cost quadratic time and hundreds of MB before any cap could see it.
/// <see cref="ScrubReader"/> marks where each header section begins and ends.
/// </summary>
internal sealed class HeaderSectionLimit(Stream inner) : ReadOnlyStream
{
    /// <summary>
    /// MimeKit reads ahead of its parse by at most about 4 KiB; past the cap by more than this,
    /// the section is certainly too large. Up to it, the exact check on each field decides.
    /// </summary>
    private const int ReadAhead = 64 * 1024;

    private long _position;
    private long? _sectionBegin;

    public void BeginSection(long offset) => _sectionBegin = offset;

    public void EndSection() => _sectionBegin = null;

    public override int Read(byte[] buffer, int offset, int count) => Count(inner.Read(buffer, offset, count));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count,
        CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer,
        CancellationToken cancellationToken = default) =>
        Count(await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false));

    private int Count(int n)
    {
        _position += n;
        if (_position - _sectionBegin > ScrubPolicy.MaxHeaderBlockBytes + ReadAhead)
            throw TooLarge();
        return n;
    }

    public static ScrubRefusedException TooLarge() =>
        new($"a header block is larger than {ScrubPolicy.MaxHeaderBlockBytes / 1024} KiB.");
}
