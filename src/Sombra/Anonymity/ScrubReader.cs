using System.Text;
using MimeKit;

namespace Sombra.Anonymity;

/// <summary>
/// Streams one message through MimeKit's event-based <see cref="MimeReader"/>: header blocks are
/// buffered and rewritten (<see cref="HeaderWriter"/>), leaf content is copied through byte for
/// byte as MimeKit reports it (no decoding, no re-encoding), boundaries are replaced and
/// preambles and epilogues dropped. Anything it cannot vouch for throws
/// <see cref="ScrubRefusedException"/>; the caller then discards what was written.
/// </summary>
internal sealed class ScrubReader : MimeReader
{
    private static readonly byte[] Crlf = "\r\n"u8.ToArray();

    private readonly Stream _output;
    private readonly HeaderSectionLimit _limit;
    private readonly ScrubPolicy _policy;
    private readonly HeaderWriter _headers;
    private readonly List<ScrubNote>? _report;
    private readonly List<Header> _pending = [];
    private readonly Stack<Frame> _frames = new();

    private int _pendingBytes;

    /// <summary>
    /// The lines from the first one in header position that is not a header field to the end of
    /// MimeKit's header block. RFC 5322 readers such as Postfix's cleanup begin the body there;
    /// MimeKit reads on to the blank line and calls them invalid headers, which would lose them.
    /// </summary>
    private MemoryStream? _bodyStart;

    private bool _firstInSection;
    private bool _nextIsMessage = true;
    private bool _topMessageDone;
    private string _nextWhere = "message";
    private int _parts;

    /// <summary>Trailing bytes of leaf content not yet written: 1 is "\r", 2 is "\r\n".</summary>
    private int _held;

    /// <summary>The last two bytes written, to end the output on a line end.</summary>
    private byte _last = (byte)'\n', _beforeLast = (byte)'\r';

    public bool Needs8BitMime { get; private set; }
    public bool NeedsSmtpUtf8 => _headers.WroteNonAscii;

    public ScrubReader(HeaderSectionLimit input, Stream output, ScrubPolicy policy, List<ScrubNote>? report)
        : base(Parser(policy), input, MimeFormat.Entity)
    {
        _limit = input;
        _output = output;
        _policy = policy;
        _report = report;
        _headers = new HeaderWriter(policy, report);
    }

    private static ParserOptions Parser(ScrubPolicy policy)
    {
        var options = ParserOptions.Default.Clone();
        options.MaxMimeDepth = policy.MaxNestingDepth + 2;
        return options;
    }

    private sealed class Frame(bool multipart, string boundary, string path, bool related = false)
    {
        public bool Multipart { get; } = multipart;
        public bool Related { get; } = related;
        public string Boundary { get; } = boundary;
        public string Path { get; } = path;
        public int Parts { get; set; }
        public bool Closed { get; set; }
    }

    /// <summary>Ends the output after the last event: content's own final CRLF, or one to close it.</summary>
    public async Task FinishAsync(CancellationToken cancellationToken)
    {
        if (_held > 0)
            await WriteAsync(Crlf.AsMemory(0, _held), cancellationToken);
        _held = 0;
        if (_last != '\n' || _beforeLast != '\r')
            await WriteAsync(Crlf, cancellationToken);
    }

    protected override Task OnHeadersBeginAsync(long beginOffset, int beginLineNumber, CancellationToken cancellationToken)
    {
        _pending.Clear();
        _pendingBytes = 0;
        _bodyStart = null;
        _firstInSection = true;
        _limit.BeginSection(beginOffset);
        return Task.CompletedTask;
    }

    protected override Task OnHeadersEndAsync(long beginOffset, int beginLineNumber, long endOffset,
        int endLineNumber, CancellationToken cancellationToken)
    {
        _limit.EndSection();
        return Task.CompletedTask;
    }

    protected override Task OnHeaderReadAsync(Header header, int beginLineNumber, CancellationToken cancellationToken)
    {
        _pendingBytes += header.RawField.Length + 1 + header.RawValue.Length;
        if (_pendingBytes > ScrubPolicy.MaxHeaderBlockBytes)
            throw HeaderSectionLimit.TooLarge();

        // MimeKit gives a line without a colon as the whole line in RawField and no value; a
        // field at the very end of the input without its line end looks the same as one.
        var field = Array.IndexOf(header.RawField, (byte)'\n') < 0 && HeaderRules.IsFieldName(header.Field);
        if (field && header.RawValue.Length == 0)
            throw new ScrubRefusedException("the message ends inside a header line.");
        var first = _firstInSection;
        _firstInSection = false;

        if (_bodyStart is null && field)
        {
            _pending.Add(header);
        }
        else if (first && !_topMessageDone)
        {
            // MimeKit lets only an mbox "From " line come first: a mailbox file's envelope line,
            // which names the sender and is not content.
            Note(_nextWhere, "mbox From line", "removed", "envelope line of a mailbox file");
        }
        else
        {
            if (_bodyStart is null)
            {
                _bodyStart = new MemoryStream();
                Note(_nextWhere, "header section", "ended early",
                    "a line that is not a header field begins the body, as RFC 5322 readers take it");
            }
            if (!field)
            {
                _bodyStart.Write(header.RawField);
                return Task.CompletedTask;
            }

            // MIME readers differ on which Content-Type counts when one follows the body's start.
            if (header.Id is HeaderId.ContentType or HeaderId.ContentTransferEncoding)
                throw new ScrubRefusedException(
                    $"a {header.Field} field follows a line that is not a header field; MIME readers "
                    + "would disagree about the part.");
            _bodyStart.Write(header.RawField);
            _bodyStart.WriteByte((byte)':');
            _bodyStart.Write(header.RawValue);
        }
        return Task.CompletedTask;
    }

    /// <summary>The blank line ending MimeKit's header block is body text if the body began above it.</summary>
    protected override Task OnBodySeparatorAsync(long beginOffset, int beginLineNumber, long endOffset,
        CancellationToken cancellationToken)
    {
        _bodyStart?.Write(Crlf);
        return Task.CompletedTask;
    }

    /// <summary>A container's structure is read from the lines MimeKit took for headers: refused.</summary>
    private void CheckBodyStart(ContentType contentType)
    {
        if (_bodyStart is not null)
            throw new ScrubRefusedException(
                $"a {contentType.MimeType} part has a line in its header section that is not a header field, "
                + "so its parts cannot be told apart safely.");
    }

    protected override async Task OnMimePartBeginAsync(ContentType contentType, long beginOffset, int beginLineNumber,
        CancellationToken cancellationToken)
    {
        CountEntity(container: false);
        var type = contentType.MediaType.ToLowerInvariant();
        var subtype = contentType.MediaSubtype.ToLowerInvariant();

        // MimeKit reads an encoded message/rfc822 or a multipart it cannot split as an opaque
        // leaf; its headers would pass unread (RFC 2046 section 5.2.1 forbids the encoding).
        if (type == "multipart" || (type == "message" && subtype is "rfc822" or "global" or "news"))
            throw new ScrubRefusedException(
                $"a {type}/{subtype} part is encoded or malformed, so its headers cannot be scrubbed.");
        if (MediaTypeRules.Refusal(contentType) is { } refusal)
            throw new ScrubRefusedException(refusal);
        if (MediaTypeRules.IsEncrypted(contentType))
            NoteEncrypted();

        await WriteHeadersAsync(contentType, null, container: false, cancellationToken);
        if (_bodyStart is not null)
        {
            var text = _bodyStart.GetBuffer().AsMemory(0, (int)_bodyStart.Length);
            await CopyContentAsync(text, cancellationToken);
            _bodyStart = null;
        }
    }

    protected override async Task OnMultipartBeginAsync(ContentType contentType, long beginOffset, int beginLineNumber,
        CancellationToken cancellationToken)
    {
        CountEntity(container: true);
        CheckBodyStart(contentType);
        if (string.IsNullOrEmpty(contentType.Boundary))
            throw new ScrubRefusedException("a multipart part has no boundary parameter (RFC 2046 section 5.1.1).");
        if (contentType.MediaSubtype.Equals("signed", StringComparison.OrdinalIgnoreCase))
            throw new ScrubRefusedException(
                "signed messages are refused: a signature names the signer, and scrubbing would break it.");
        if (MediaTypeRules.IsEncrypted(contentType))
            NoteEncrypted();

        var where = _nextWhere;
        var boundary = RandomToken.Boundary();
        await WriteHeadersAsync(contentType, boundary, container: true, cancellationToken);
        _frames.Push(new Frame(true, boundary, PathOf(where), contentType.IsMimeType("multipart", "related")));
    }

    protected override async Task OnMessagePartBeginAsync(ContentType contentType, long beginOffset,
        int beginLineNumber, CancellationToken cancellationToken)
    {
        CountEntity(container: true);

        // MimeKit reads message/external-body as an attached message; it is not one.
        if (MediaTypeRules.Refusal(contentType) is { } refusal)
            throw new ScrubRefusedException(refusal);
        CheckBodyStart(contentType);
        var where = _nextWhere;
        await WriteHeadersAsync(contentType, null, container: true, cancellationToken);
        _frames.Push(new Frame(false, "", PathOf(where)));
        _nextIsMessage = true;
        _nextWhere = "message in " + where;
    }

    protected override Task OnMessagePartEndAsync(ContentType contentType, long beginOffset, int beginLineNumber,
        long headersEndOffset, long endOffset, int lines, CancellationToken cancellationToken)
    {
        _frames.Pop();
        return Task.CompletedTask;
    }

    protected override Task OnMimePartContentReadAsync(byte[] buffer, int startIndex, int count,
        CancellationToken cancellationToken) =>
        CopyContentAsync(buffer.AsMemory(startIndex, count), cancellationToken);

    private Task CopyContentAsync(ReadOnlyMemory<byte> chunk, CancellationToken cancellationToken)
    {
        var count = chunk.Length;
        if (count == 0)
            return Task.CompletedTask;
        if (!Needs8BitMime && chunk.Span.IndexOfAnyInRange((byte)0x80, (byte)0xFF) >= 0)
            Needs8BitMime = true;

        // Hold back a final CRLF: if a boundary follows it belongs to the delimiter
        // (RFC 2046 section 5.1.1), and the delimiter we write brings its own.
        var last = chunk.Span[^1];
        var beforeLast = count >= 2 ? chunk.Span[^2] : _held >= 1 ? (byte)'\r' : (byte)0;
        var newHeld = last == '\n' && beforeLast == '\r' ? 2 : last == '\r' ? 1 : 0;
        var total = _held + count;
        var write = total - newHeld;
        var fromHeld = Math.Min(_held, write);
        _held = newHeld;
        return WriteTwoAsync(Crlf.AsMemory(0, fromHeld), chunk[..(write - fromHeld)], cancellationToken);
    }

    private async Task WriteTwoAsync(ReadOnlyMemory<byte> first, ReadOnlyMemory<byte> second,
        CancellationToken cancellationToken)
    {
        if (!first.IsEmpty)
            await WriteAsync(first, cancellationToken);
        if (!second.IsEmpty)
            await WriteAsync(second, cancellationToken);
    }

    protected override Task OnMultipartBoundaryBeginAsync(long beginOffset, int beginLineNumber,
        CancellationToken cancellationToken)
    {
        var frame = _frames.Peek();
        frame.Parts++;
        _nextWhere = "part " + (frame.Path.Length == 0 ? "" : frame.Path + ".") + frame.Parts;
        var text = (frame.Parts == 1 ? "--" : "\r\n--") + frame.Boundary + "\r\n";
        _held = 0;
        return WriteAsync(Encoding.ASCII.GetBytes(text), cancellationToken).AsTask();
    }

    protected override Task OnMultipartEndBoundaryBeginAsync(long beginOffset, int beginLineNumber,
        CancellationToken cancellationToken) =>
        CloseAsync(_frames.Peek(), cancellationToken);

    private Task CloseAsync(Frame frame, CancellationToken cancellationToken)
    {
        frame.Closed = true;
        _held = 0;
        var text = (frame.Parts == 0 ? "--" : "\r\n--") + frame.Boundary + "--";
        return WriteAsync(Encoding.ASCII.GetBytes(text), cancellationToken).AsTask();
    }

    protected override async Task OnMultipartEndAsync(ContentType contentType, long beginOffset, int beginLineNumber,
        long headersEndOffset, long endOffset, int lines, CancellationToken cancellationToken)
    {
        var frame = _frames.Pop();

        // MimeKit puts everything into the preamble when the boundary never occurs; dropping the
        // preamble would then drop the message (RFC 2046 section 5.1.1).
        if (frame.Parts == 0)
            throw new ScrubRefusedException("a multipart part has no body parts: its boundary never occurs.");
        if (!frame.Closed)
            await CloseAsync(frame, cancellationToken);
    }

    protected override Task OnMultipartPreambleReadAsync(byte[] buffer, int startIndex, int count,
        CancellationToken cancellationToken)
    {
        Note(buffer, startIndex, count, "preamble");
        return Task.CompletedTask;
    }

    protected override Task OnMultipartEpilogueReadAsync(byte[] buffer, int startIndex, int count,
        CancellationToken cancellationToken)
    {
        Note(buffer, startIndex, count, "epilogue");
        return Task.CompletedTask;
    }

    private void Note(byte[] buffer, int startIndex, int count, string what)
    {
        if (_report is null || buffer.AsSpan(startIndex, count).Trim("\r\n \t"u8).IsEmpty)
            return;
        var where = _frames.Count > 0 && _frames.Peek().Path.Length > 0 ? "part " + _frames.Peek().Path : "message";
        if (!_report.Any(n => n.Where == where && n.Header == what))
            _report.Add(new ScrubNote(where, what, "removed", "text outside the parts; client-specific", null));
    }

    private void Note(string where, string what, string action, string why) =>
        _report?.Add(new ScrubNote(where, what, action, why, null));

    private void NoteEncrypted() =>
        _report?.Add(new ScrubNote(_nextWhere, "encrypted content", "passed unread",
            "a signature, key or armor comment inside it is not seen by the relay", null));

    private void CountEntity(bool container)
    {
        if (++_parts > _policy.MaxParts)
            throw new ScrubRefusedException($"the message has more than {_policy.MaxParts} MIME parts.");
        if (container && _frames.Count + 1 > _policy.MaxNestingDepth)
            throw new ScrubRefusedException(
                $"the message nests MIME parts deeper than {_policy.MaxNestingDepth} levels.");
    }

    private static string PathOf(string where) =>
        where == "message" ? "" : where[(where.LastIndexOf(' ') + 1)..];

    private async Task WriteHeadersAsync(ContentType contentType, string? boundary, bool container,
        CancellationToken cancellationToken)
    {
        var kind = !_nextIsMessage ? HeaderWriter.Block.Part
            : _topMessageDone ? HeaderWriter.Block.EmbeddedMessage
            : HeaderWriter.Block.Message;
        _topMessageDone = true;
        _nextIsMessage = false;

        var related = _frames.Any(f => f.Related);
        var text = _headers.Write(_pending, kind, _nextWhere, contentType, boundary, container, related);
        _pending.Clear();
        await WriteAsync(text, cancellationToken);

        // The blank line that ends the header block (RFC 5322 section 2.1).
        await WriteAsync(Crlf, cancellationToken);
    }

    private ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (data.IsEmpty)
            return ValueTask.CompletedTask;
        _beforeLast = data.Length >= 2 ? data.Span[^2] : _last;
        _last = data.Span[^1];
        return _output.WriteAsync(data, cancellationToken);
    }

    // The stage runs asynchronously only; a synchronous read would skip every rewrite.
    protected override void OnHeadersBegin(long beginOffset, int beginLineNumber, CancellationToken cancellationToken) =>
        throw new NotSupportedException("ScrubReader reads asynchronously only.");
}
