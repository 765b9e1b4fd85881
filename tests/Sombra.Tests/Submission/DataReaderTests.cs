using System.Buffers;
using System.Text;
using Sombra.Submission;

namespace Sombra.Tests.Submission;

public class DataReaderTests
{
    private static (DataReader Reader, string Output, int Consumed) Run(string input, long max = 1 << 20,
        int chunk = int.MaxValue)
    {
        var reader = new DataReader(max);
        var output = new ArrayBufferWriter<byte>();
        var bytes = Encoding.Latin1.GetBytes(input);
        var consumed = 0;
        while (consumed < bytes.Length && !reader.Finished)
        {
            var size = Math.Min(chunk, bytes.Length - consumed);
            consumed += reader.Feed(bytes.AsSpan(consumed, size), output);
        }
        return (reader, Encoding.Latin1.GetString(output.WrittenSpan), consumed);
    }

    [Fact]
    public void EmptyMessageEndsAtOnce()
    {
        var (reader, output, consumed) = Run(".\r\nQUIT\r\n");
        Assert.True(reader.Finished);
        Assert.False(reader.Faulted);
        Assert.Equal("", output);
        Assert.Equal(3, consumed);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(7)]
    [InlineData(int.MaxValue)]
    public void UnstuffsFromTheFirstLineOnAndStopsAtTheTerminator(int chunk)
    {
        var (reader, output, consumed) = Run("..first\r\nmid.dle\r\n..\r\n...x\r\n.\r\nNOOP\r\n", chunk: chunk);
        Assert.True(reader.Finished);
        Assert.False(reader.Faulted);
        Assert.Equal(".first\r\nmid.dle\r\n.\r\n..x\r\n", output);
        Assert.Equal("..first\r\nmid.dle\r\n..\r\n...x\r\n.\r\n".Length, consumed);
    }

    [Theory]
    [InlineData("a\nb\r\n.\r\n")]
    [InlineData("a\rb\r\n.\r\n")]
    [InlineData("a\0b\r\n.\r\n")]
    [InlineData("a\r\n.\r\r\n.\r\n")]
    [InlineData("a\r\r\n.\r\n")]
    public void BareCrLfOrNulIsSmugglingAndReadsOnToTheRealEnd(string input)
    {
        foreach (var chunk in new[] { 1, 2, int.MaxValue })
        {
            var (reader, _, consumed) = Run(input + "AFTER", chunk: chunk);
            Assert.True(reader.Finished);
            Assert.True(reader.Smuggling);
            Assert.StartsWith("550 5.5.2", reader.FaultReply);
            Assert.Equal(input.Length, consumed);
        }
    }

    [Theory]
    [InlineData("a\n.\nMAIL FROM:<x@y>\r\n.\r\n")]
    [InlineData("a\r\n.\nRCPT\r\n.\r\n")]
    [InlineData("a\n.\r\nRCPT\r\n.\r\n")]
    [InlineData("a\r.\r\nRCPT\r\n.\r\n")]
    public void SmugglingTerminatorsDoNotEndTheMessage(string input)
    {
        var (reader, _, consumed) = Run(input);
        Assert.True(reader.Smuggling);
        Assert.Equal(input.Length, consumed);
    }

    [Fact]
    public void OversizeIsReadToTheEndAndRefused()
    {
        var body = string.Concat(Enumerable.Repeat("0123456789\r\n", 100));
        var (reader, output, consumed) = Run(body + ".\r\nX", max: 500);
        Assert.True(reader.Finished);
        Assert.True(reader.TooBig);
        Assert.StartsWith("552 5.3.4", reader.FaultReply);
        Assert.True(output.Length <= 500);
        Assert.Equal(body.Length + 3, consumed);
    }

    [Fact]
    public void LineOver1000OctetsIsRefused()
    {
        var (ok, _, _) = Run(new string('a', 998) + "\r\n.\r\n");
        Assert.False(ok.Faulted);
        var (reader, _, _) = Run(new string('a', 999) + "\r\n.\r\n");
        Assert.True(reader.LineTooLong);
        Assert.StartsWith("500 5.5.2", reader.FaultReply);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(int.MaxValue)]
    public void StuffingDotDoesNotCountTowardsTheLineLimit(int chunk)
    {
        // RFC 5321 section 4.5.3.1.6: the limit is on the line before the dot is added.
        var line = new string('a', 998);
        var (ok, output, _) = Run("." + line + "\r\n.\r\n", chunk: chunk);
        Assert.False(ok.Faulted);
        Assert.Equal(line + "\r\n", output);
        Assert.Equal("." + line[1..] + "\r\n", Run(".." + line[1..] + "\r\n.\r\n", chunk: chunk).Output);

        var (reader, _, _) = Run(".a" + line + "\r\n.\r\n", chunk: chunk);
        Assert.True(reader.LineTooLong);
    }

    [Fact]
    public void RandomStreamsNeverCrashNeverEndEarlyNeverYieldBareCrOrLf()
    {
        var random = new Random(5321);
        byte[] alphabet = "\r\n.\0ab"u8.ToArray();
        for (var round = 0; round < 20_000; round++)
        {
            var length = random.Next(0, 60);
            var input = new byte[length];
            for (var i = 0; i < length; i++)
                input[i] = alphabet[random.Next(alphabet.Length)];

            var reader = new DataReader(1 << 20);
            var output = new ArrayBufferWriter<byte>();
            var consumed = 0;
            while (consumed < input.Length && !reader.Finished)
            {
                var size = Math.Min(random.Next(1, 8), input.Length - consumed);
                consumed += reader.Feed(input.AsSpan(consumed, size), output);
            }

            var expectedEnd = ReferenceEnd(input);
            if (expectedEnd < 0)
                Assert.False(reader.Finished);
            else
            {
                Assert.True(reader.Finished);
                Assert.Equal(expectedEnd, consumed);
            }
            AssertNoBareCrOrLf(output.WrittenSpan);
            if (reader.Finished && !reader.Faulted)
                Assert.Equal(ReferenceUnstuff(input.AsSpan(0, consumed)), output.WrittenSpan.ToArray());
        }
    }

    /// <summary>Where CRLF.CRLF (or a leading .CRLF) ends, computed the slow, obvious way.</summary>
    private static int ReferenceEnd(byte[] input)
    {
        var text = Encoding.Latin1.GetString(input);
        if (text.StartsWith(".\r\n"))
            return 3;
        var at = text.IndexOf("\r\n.\r\n", StringComparison.Ordinal);
        return at < 0 ? -1 : at + 5;
    }

    private static byte[] ReferenceUnstuff(ReadOnlySpan<byte> message)
    {
        var text = Encoding.Latin1.GetString(message);
        text = text[..^3]; // the terminator's ".\r\n"
        var lines = text.Split("\r\n");
        var result = string.Join("\r\n", lines.Select(l => l.StartsWith('.') ? l[1..] : l));
        return Encoding.Latin1.GetBytes(result);
    }

    private static void AssertNoBareCrOrLf(ReadOnlySpan<byte> bytes)
    {
        for (var i = 0; i < bytes.Length; i++)
        {
            if (bytes[i] == '\r')
                Assert.True(i + 1 < bytes.Length && bytes[i + 1] == '\n', "bare CR in output");
            if (bytes[i] == '\n')
                Assert.True(i > 0 && bytes[i - 1] == '\r', "bare LF in output");
            Assert.NotEqual(0, bytes[i]);
        }
    }
}
