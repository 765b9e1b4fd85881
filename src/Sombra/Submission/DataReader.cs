using System.Buffers;

namespace Sombra.Submission;

/// <summary>
/// Reads the DATA block of RFC 5321 section 4.1.1.4 strictly, as a defence against SMTP
/// smuggling: only CRLF.CRLF ends the message, a leading dot is removed from every line
/// (section 4.5.2, the first line included), and a bare CR, a bare LF or a NUL anywhere marks
/// the message as refused while reading goes on to the real terminator. Output stops at the
/// first fault, so what this reader yields never holds a bare CR or LF.
/// </summary>
/// <remarks>
/// It is a state machine over arbitrary chunks, so it neither holds the message nor a line:
/// memory stays bounded whatever the client sends.
/// </remarks>
public sealed class DataReader(long maxSize)
{
    /// <summary>RFC 5321 section 4.5.3.1.6: a text line is at most 1000 octets with its CRLF.</summary>
    public const int MaxLineLength = 1000;

    private enum State { LineStart, Dot, DotCr, Text, Cr }

    private State _state = State.LineStart;
    private int _lineLength;

    public bool Finished { get; private set; }

    /// <summary>A bare CR, a bare LF or a NUL was seen.</summary>
    public bool Smuggling { get; private set; }

    public bool TooBig { get; private set; }
    public bool LineTooLong { get; private set; }

    /// <summary>Octets of message content after unstuffing (counted even past the limit).</summary>
    public long Size { get; private set; }

    public bool Faulted => Smuggling || TooBig || LineTooLong;

    /// <summary>The reply to the end of DATA when the content is refused, or null.</summary>
    public string? FaultReply =>
        Smuggling ? "550 5.5.2 Message refused: bare CR, bare LF or NUL in the data"
        : TooBig ? $"552 5.3.4 Message exceeds the size limit of {maxSize} octets"
        : LineTooLong ? "500 5.5.2 Message refused: a line is longer than 1000 octets"
        : null;

    /// <summary>
    /// Consumes <paramref name="input"/> up to and including the terminator, writing content to
    /// <paramref name="output"/> while no fault has been seen. Returns the octets consumed.
    /// </summary>
    public int Feed(ReadOnlySpan<byte> input, IBufferWriter<byte> output)
    {
        var i = 0;
        var run = 0; // start of the bytes of this chunk not yet written out
        while (i < input.Length)
        {
            var b = input[i];
            switch (_state)
            {
                case State.LineStart:
                    _lineLength = 0;
                    if (b == (byte)'.')
                    {
                        // Section 4.5.2: drop the leading dot; what follows decides whether
                        // this is the terminator or a stuffed line. The dot is not counted:
                        // the limit of section 4.5.3.1.6 is on the line before it was added.
                        Emit(input[run..i], output);
                        i++;
                        run = i;
                        _state = State.Dot;
                    }
                    else
                        _state = State.Text;
                    break;

                case State.Dot:
                    if (b == (byte)'\r')
                    {
                        Count(1);
                        i++;
                        _state = State.DotCr;
                    }
                    else
                        _state = State.Text;
                    break;

                case State.DotCr:
                    if (b == (byte)'\n')
                    {
                        // The terminator. Its CR is not content: it is the only byte after
                        // 'run' in this chunk, or it was held back at the end of the last one.
                        Finished = true;
                        _heldCr = false;
                        return i + 1;
                    }
                    Smuggling = true; // ".\r" and then not LF: a bare CR
                    _state = State.Text;
                    break;

                case State.Cr:
                    if (b == (byte)'\n')
                    {
                        Count(1);
                        i++;
                        if (_heldCr)
                        {
                            // The CR came at the end of the last chunk: write the pair as one,
                            // so that a fault later in this chunk cannot leave the CR alone.
                            Emit("\r\n"u8, output);
                            run = i;
                            _heldCr = false;
                        }
                        _state = State.LineStart;
                    }
                    else
                    {
                        Smuggling = true; // a CR not followed by LF
                        _heldCr = false;
                        _state = State.Text;
                    }
                    break;

                case State.Text:
                    var rest = input[i..];
                    var special = rest.IndexOfAny((byte)'\r', (byte)'\n', (byte)0);
                    var plain = special < 0 ? rest.Length : special;
                    Count(plain);
                    i += plain;
                    if (special < 0)
                        break;
                    if (input[i] != (byte)'\r')
                        Smuggling = true; // a bare LF or a NUL
                    else
                        _state = State.Cr;
                    Count(1);
                    i++;
                    break;
            }
        }

        // A CR at the very end is held back: the next chunk's first byte decides whether it
        // ends a line, the whole message, or is a bare CR. Any byte consumed after a CR leaves
        // the Cr and DotCr states, so in those states the CR is the last byte of this chunk.
        if (_state is State.Cr or State.DotCr && i > 0 && !_heldCr)
        {
            Emit(input[run..(i - 1)], output);
            _heldCr = true;
        }
        else
            Emit(input[run..i], output);
        return i;
    }

    private bool _heldCr;

    private void Count(int octets)
    {
        _lineLength += octets;
        if (_lineLength > MaxLineLength)
            LineTooLong = true;
    }

    private void Emit(ReadOnlySpan<byte> bytes, IBufferWriter<byte> output)
    {
        if (bytes.IsEmpty)
            return;
        Size += bytes.Length;
        if (Size > maxSize)
            TooBig = true;
        if (Faulted)
            return;
        output.Write(bytes);
    }
}
