namespace Sombra.Queue;

/// <summary>
/// The write side of an incoming body: bytes stay in memory up to a limit, then everything moves
/// to a temporary file, so a 100 MiB message never sits in memory whole.
/// </summary>
internal sealed class SpillStream(int inlineLimit, Func<FileStream> createFile) : Stream
{
    private MemoryStream? _memory = new();
    private long _length;

    public FileStream? File { get; private set; }

    /// <summary>The body when it stayed small; null once it spilled to a file.</summary>
    public MemoryStream? Memory => _memory;

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => _length;
    public override long Position { get => _length; set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        Spill(buffer.Length);
        if (_memory is not null)
            _memory.Write(buffer);
        else
            File!.Write(buffer);
        _length += buffer.Length;
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Spill(buffer.Length);
        if (_memory is not null)
            _memory.Write(buffer.Span);
        else
            await File!.WriteAsync(buffer, cancellationToken);
        _length += buffer.Length;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    private void Spill(int adding)
    {
        if (_memory is null || _memory.Length + adding <= inlineLimit)
            return;
        File = createFile();
        File.Write(_memory.GetBuffer(), 0, (int)_memory.Length);
        _memory = null;
    }

    public override void Flush() => File?.Flush();
    public override Task FlushAsync(CancellationToken cancellationToken) =>
        File?.FlushAsync(cancellationToken) ?? Task.CompletedTask;
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            File?.Dispose();
        base.Dispose(disposing);
    }
}
