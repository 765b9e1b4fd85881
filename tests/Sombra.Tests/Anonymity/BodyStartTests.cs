using System.Text;
using Xunit;
using static Sombra.Tests.Anonymity.ScrubHarness;

namespace Sombra.Tests.Anonymity;

/// <summary>
/// A line in header position that is not a header field begins the body, as RFC 5322 readers
/// such as Postfix's cleanup take it: nothing the sender wrote is lost while the relay says 250.
/// </summary>
public sealed class BodyStartTests
{
    private static string Body(byte[] output)
    {
        var text = Encoding.UTF8.GetString(output);
        return text[(text.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..];
    }

    [Fact]
    public async Task A_message_without_a_blank_line_keeps_its_text()
    {
        var input = Encoding.ASCII.GetBytes("From: a@b\r\nTo: bob@example.org\r\nSubject: x\r\n"
            + "body no blank line here\r\nsecond line\r\n");

        var output = await ScrubAccepted(input);

        Assert.Equal("body no blank line here\r\nsecond line\r\n", Body(output));
        Assert.Equal("x", Parse(output).Subject);
    }

    [Fact]
    public async Task Lines_that_look_like_headers_and_blank_lines_after_the_start_stay_body_text()
    {
        var text = "Hello Bob,\r\n  indented\r\nNote: this looks like a header\r\nX-Leak : too\r\n\r\nlast\r\n";
        var input = Encoding.UTF8.GetBytes("From: a@a.example\r\nSubject: s\r\n" + text);

        var (output, result, notes) = await ScrubWithReport(input);

        Assert.True(result.Accepted, result.Refusal);
        Assert.Equal(text, Body(output));
        Assert.Contains(notes, n => n.Header == "header section" && n.Action == "ended early");
    }

    [Fact]
    public async Task Eight_bit_text_at_the_start_is_kept_byte_for_byte()
    {
        var text = Encoding.Latin1.GetBytes("Gr\u00fc\u00dfe aus K\u00f6ln\r\n");
        var input = "From: a@a.example\r\n"u8.ToArray().Concat(text).ToArray();

        var (output, result) = await Scrub(input);

        Assert.True(result.Accepted, result.Refusal);
        Assert.True(result.Needs8BitMime);
        Assert.Equal(text, output[^text.Length..]);
    }

    [Theory]
    [InlineData("--b\r\nfoo\r\n--b--\r\n", "foo")]
    [InlineData("--b\r\nfoo\r\n--b\r\n\r\nsecond\r\n--b--\r\n", "foo")]
    [InlineData("--b\r\nContent-Type: text/plain\r\nfoo bar\r\n\r\nbaz\r\n--b--\r\n", "foo bar\r\n\r\nbaz")]
    public async Task A_part_whose_text_begins_in_header_position_keeps_it(string parts, string first)
    {
        var input = Encoding.ASCII.GetBytes(
            "From: a@a.example\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" + parts);

        var output = await ScrubAccepted(input);

        var leaf = Leaves(output)[0];
        Assert.Equal("text/plain", leaf.Type);
        Assert.Equal(first, Encoding.ASCII.GetString(leaf.Content));
    }

    [Fact]
    public async Task An_mbox_envelope_line_at_the_top_is_removed_not_taken_for_the_body()
    {
        var input = Crlf("From alice@alice.example Tue Mar  3 10:00:00 2026\nFrom: a@a.example\n" +
            "To: bob@example.net\n\nbody\n");

        var output = await ScrubAccepted(input);

        Assert.Equal("body\r\n", Body(output));
        AssertNoToken(output, ["alice", "2026"]);
    }

    [Fact]
    public async Task Only_the_first_line_can_be_an_mbox_envelope_line()
    {
        var input = Crlf("From alice@alice.example Tue Mar  3 10:00:00 2026\nhello, no headers at all\n");

        var output = await ScrubAccepted(input);

        Assert.Equal("hello, no headers at all\r\n", Body(output));
    }

    [Theory]
    [InlineData("multipart", "From: a@a.example\r\nContent-Type: multipart/mixed; boundary=b\r\n"
        + "not a field\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n")]
    [InlineData("Content-Type below",
        "From: a@a.example\r\nnot a field\r\nContent-Type: text/html\r\n\r\nx\r\n")]
    [InlineData("line end missing",
        "From: a@a.example\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nfoo")]
    public async Task What_readers_would_take_differently_is_refused(string why, string message)
    {
        var (_, result) = await Scrub(Encoding.ASCII.GetBytes(message));

        Assert.False(result.Accepted, why);
    }
}
