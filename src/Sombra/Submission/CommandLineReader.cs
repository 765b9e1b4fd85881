using System.Buffers;
using System.Text;

namespace Sombra.Submission;

/// <summary>
/// Takes SMTP command lines out of a buffer. Only CRLF ends a line (RFC 5321 section 2.3.8):
/// a bare LF does not, so "NOOP\nQUIT\r\n" is one malformed line, not two commands. A line
/// longer than the limit is discarded up to its CRLF without being held in memory.
/// </summary>
/// <param name="maxLength">
/// The longest line in octets, its CRLF included (RFC 5321 section 4.5.3.1.4).
/// </param>
public sealed class CommandLineReader(int maxLength)
{
    /// <summary><see cref="NotUtf8"/>: the line is not UTF-8; it comes decoded with U+FFFD so the
    /// session can tell which command it was, and must be refused.</summary>
    public enum Status { NeedMore, Line, TooLong, Malformed, NotUtf8 }

    private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    private bool _discarding;
    private bool _discardSawCr;

    /// <summary>
    /// Looks for one line in <paramref name="buffer"/>, slicing off what it consumed. On
    /// <see cref="Status.Line"/>, <paramref name="line"/> is the text without its CRLF.
    /// </summary>
    public Status TryRead(ref ReadOnlySequence<byte> buffer, out string line)
    {
        line = "";
        if (_discarding)
            return Discard(ref buffer);

        var reader = new SequenceReader<byte>(buffer);
        while (true)
        {
            if (!reader.TryAdvanceTo((byte)'\n', advancePastDelimiter: true))
            {
                // A line that fits has at most maxLength - 1 octets before its LF.
                if (buffer.Length >= maxLength)
                {
                    // No CRLF within the limit: drop what we have and skip to the end of the line.
                    _discarding = true;
                    _discardSawCr = buffer.Slice(buffer.Length - 1).FirstSpan[0] == (byte)'\r';
                    buffer = buffer.Slice(buffer.End);
                    return Status.NeedMore;
                }
                return Status.NeedMore;
            }

            var consumed = reader.Consumed;
            var candidate = buffer.Slice(0, consumed);
            if (consumed >= 2 && candidate.Slice(consumed - 2, 1).FirstSpan[0] == (byte)'\r')
            {
                buffer = buffer.Slice(consumed);
                if (consumed > maxLength)
                    return Status.TooLong;
                var content = candidate.Slice(0, consumed - 2);
                if (content.PositionOf((byte)'\n') is not null || content.PositionOf((byte)'\r') is not null
                    || content.PositionOf((byte)0) is not null)
                    return Status.Malformed;
                return Decode(content, out line) ? Status.Line : Status.NotUtf8;
            }

            // A bare LF: not the end of the line. Keep looking, unless the line, which still
            // needs its CRLF, can no longer fit.
            if (consumed >= maxLength)
            {
                buffer = buffer.Slice(consumed);
                _discarding = true;
                _discardSawCr = false;
                return Discard(ref buffer);
            }
        }
    }

    private Status Discard(ref ReadOnlySequence<byte> buffer)
    {
        var reader = new SequenceReader<byte>(buffer);
        while (reader.TryRead(out var b))
        {
            if (b == (byte)'\n' && _discardSawCr)
            {
                _discarding = false;
                buffer = buffer.Slice(reader.Consumed);
                return Status.TooLong;
            }
            _discardSawCr = b == (byte)'\r';
        }
        buffer = buffer.Slice(buffer.End);
        return Status.NeedMore;
    }

    // Commands are ASCII; SMTPUTF8 addresses (RFC 6531) are UTF-8, strictly (RFC 3629: no
    // overlong forms, no surrogates). Decoding leniently would turn bad bytes into U+FFFD, which
    // the local-part grammar accepts like any other non-ASCII character.
    private static bool Decode(ReadOnlySequence<byte> bytes, out string line)
    {
        var span = bytes.IsSingleSegment ? bytes.FirstSpan : bytes.ToArray();
        try
        {
            line = StrictUtf8.GetString(span);
            return true;
        }
        catch (DecoderFallbackException)
        {
            line = Encoding.UTF8.GetString(span);
            return false;
        }
    }
}
