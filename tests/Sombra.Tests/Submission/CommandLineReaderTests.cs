using System.Buffers;
using System.Text;
using Sombra.Submission;

namespace Sombra.Tests.Submission;

public class CommandLineReaderTests
{
    private static List<(CommandLineReader.Status, string)> ReadAll(string input, int max = 512)
    {
        var reader = new CommandLineReader(max);
        var buffer = new ReadOnlySequence<byte>(Encoding.Latin1.GetBytes(input));
        var results = new List<(CommandLineReader.Status, string)>();
        while (true)
        {
            var status = reader.TryRead(ref buffer, out var line);
            if (status == CommandLineReader.Status.NeedMore)
                return results;
            results.Add((status, line));
        }
    }

    [Fact]
    public void OnlyCrLfEndsALine()
    {
        var lines = ReadAll("NOOP\nQUIT\r\nHELO x\r\n");
        Assert.Equal([(CommandLineReader.Status.Malformed, ""), (CommandLineReader.Status.Line, "HELO x")], lines);
    }

    [Fact]
    public void BareCrAndNulAreMalformed()
    {
        Assert.Equal(CommandLineReader.Status.Malformed, ReadAll("NO\rOP\r\n")[0].Item1);
        Assert.Equal(CommandLineReader.Status.Malformed, ReadAll("NO\0OP\r\n")[0].Item1);
    }

    [Fact]
    public void OverlongLineIsDiscardedToItsEndWithBoundedMemory()
    {
        var reader = new CommandLineReader(512);
        var statuses = new List<CommandLineReader.Status>();
        // Feed 100 KiB of one line in pieces; the reader must consume it as it goes.
        var piece = Encoding.ASCII.GetBytes(new string('x', 1000));
        for (var i = 0; i < 100; i++)
        {
            var buffer = new ReadOnlySequence<byte>(piece);
            var status = reader.TryRead(ref buffer, out _);
            Assert.Equal(CommandLineReader.Status.NeedMore, status);
            Assert.True(buffer.IsEmpty, "an overlong line must not be kept");
        }
        var end = new ReadOnlySequence<byte>("\r\nNOOP\r\n"u8.ToArray());
        Assert.Equal(CommandLineReader.Status.TooLong, reader.TryRead(ref end, out _));
        Assert.Equal(CommandLineReader.Status.Line, reader.TryRead(ref end, out var line));
        Assert.Equal("NOOP", line);
    }

    [Fact]
    public void LineAtTheLimitIsAcceptedAndOneMoreIsNot()
    {
        // RFC 5321 section 4.5.3.1.4: 512 octets including the CRLF.
        Assert.Equal(CommandLineReader.Status.Line, ReadAll(new string('a', 510) + "\r\n")[0].Item1);
        Assert.Equal(CommandLineReader.Status.TooLong, ReadAll(new string('a', 511) + "\r\n")[0].Item1);
    }

    [Fact]
    public void LineAtTheLimitWhoseLfIsLateIsKeptAndOneOctetMoreIsDropped()
    {
        var reader = new CommandLineReader(512);
        var start = Encoding.ASCII.GetBytes(new string('a', 510) + "\r");
        var buffer = new ReadOnlySequence<byte>(start);
        Assert.Equal(CommandLineReader.Status.NeedMore, reader.TryRead(ref buffer, out _));
        Assert.Equal(start.Length, buffer.Length); // still a candidate: kept for the next read
        var whole = new ReadOnlySequence<byte>([.. start, (byte)'\n']);
        Assert.Equal(CommandLineReader.Status.Line, reader.TryRead(ref whole, out var line));
        Assert.Equal(510, line.Length);

        var over = new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes(new string('a', 512)));
        Assert.Equal(CommandLineReader.Status.NeedMore, reader.TryRead(ref over, out _));
        Assert.True(over.IsEmpty, "a line that cannot fit any more is not kept");
        var end = new ReadOnlySequence<byte>("\r\n"u8.ToArray());
        Assert.Equal(CommandLineReader.Status.TooLong, reader.TryRead(ref end, out _));
    }

    [Fact]
    public void InvalidUtf8IsReportedAndValidUtf8IsDecoded()
    {
        var reader = new CommandLineReader(512);
        var valid = new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes("RCPT TO:<jösé@example.org>\r\n"));
        Assert.Equal(CommandLineReader.Status.Line, reader.TryRead(ref valid, out var line));
        Assert.Equal("RCPT TO:<jösé@example.org>", line);

        // A byte UTF-8 never uses, an overlong ".", a surrogate: none is UTF-8 (RFC 3629).
        foreach (var bad in new byte[][] { [0xff], [0xc0, 0xae], [0xed, 0xa0, 0x80] })
        {
            byte[] bytes = [.. "RCPT TO:<j"u8, .. bad, .. "@example.org>\r\nNOOP\r\n"u8];
            var buffer = new ReadOnlySequence<byte>(bytes);
            Assert.Equal(CommandLineReader.Status.NotUtf8, reader.TryRead(ref buffer, out line));
            Assert.StartsWith("RCPT TO:<j", line); // enough to tell the command
            Assert.Equal(CommandLineReader.Status.Line, reader.TryRead(ref buffer, out line));
            Assert.Equal("NOOP", line);
        }
    }
}
