using System.Text;
using Xunit;
using static Sombra.Tests.Anonymity.ScrubHarness;

namespace Sombra.Tests.Anonymity;

public sealed class RefusalTests
{
    private static string Nested(int depth)
    {
        var text = new StringBuilder("From: a@a.example\r\n");
        for (var i = 0; i < depth; i++)
            text.Append($"Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n");
        text.Append("Content-Type: text/plain\r\n\r\nleaf\r\n");
        for (var i = depth - 1; i >= 0; i--)
            text.Append($"--b{i}--\r\n");
        return text.ToString();
    }

    [Fact]
    public async Task Nesting_up_to_the_cap_passes_and_past_it_is_refused()
    {
        var (ok, accepted) = await Scrub(Encoding.ASCII.GetBytes(Nested(50)));
        Assert.True(accepted.Accepted, accepted.Refusal);
        Assert.Equal("leaf"u8.ToArray(), Leaves(ok).Single().Content);

        var (_, refused) = await Scrub(Encoding.ASCII.GetBytes(Nested(51)));
        Assert.False(refused.Accepted);
        Assert.Contains("deeper than 50", refused.Refusal);
    }

    [Fact]
    public async Task The_nesting_cap_is_configurable_and_counts_attached_messages()
    {
        var input = Crlf("From: a@a.example\nContent-Type: message/rfc822\n\nFrom: b@b.example\n" +
            "Content-Type: message/rfc822\n\nFrom: c@c.example\n\nleaf\n");
        var (_, ok) = await Scrub(input, Options(change: o => o.Anonymity.MaxNestingDepth = 2));
        Assert.True(ok.Accepted, ok.Refusal);

        var (_, refused) = await Scrub(input, Options(change: o => o.Anonymity.MaxNestingDepth = 1));
        Assert.False(refused.Accepted);
    }

    [Fact]
    public async Task Too_many_parts_are_refused()
    {
        string Parts(int n) => "From: a@a.example\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
            + string.Concat(Enumerable.Range(0, n).Select(i => $"--b\r\n\r\npart {i}\r\n")) + "--b--\r\n";

        // The multipart itself is one part: 999 leaves make 1000.
        var (_, ok) = await Scrub(Encoding.ASCII.GetBytes(Parts(999)));
        Assert.True(ok.Accepted, ok.Refusal);

        var (_, refused) = await Scrub(Encoding.ASCII.GetBytes(Parts(1000)));
        Assert.False(refused.Accepted);
        Assert.Contains("more than 1000 MIME parts", refused.Refusal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Each_header_block_is_capped_at_1_MiB(bool inPart)
    {
        // Lines of 100 bytes: 10,400 of them stay under 1 MiB, 10,600 pass it.
        string Block(int lines) =>
            string.Concat(Enumerable.Repeat("X-Pad: " + new string('p', 91) + "\r\n", lines));
        string Message(int lines) => inPart
            ? "From: a@a.example\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
                + Block(lines) + "\r\nx\r\n--b--\r\n"
            : "From: a@a.example\r\n" + Block(lines) + "\r\nx\r\n";

        var (_, ok) = await Scrub(Encoding.ASCII.GetBytes(Message(10_400)));
        Assert.True(ok.Accepted, ok.Refusal);

        var (_, refused) = await Scrub(Encoding.ASCII.GetBytes(Message(10_600)));
        Assert.False(refused.Accepted);
        Assert.Contains("header block is larger than 1024 KiB", refused.Refusal);
    }

    private static string Part(string type, string content = "AAEC") =>
        "From: a@a.example\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\ntext\r\n"
        + $"--b\r\nContent-Type: {type}\r\n\r\n{content}\r\n--b--\r\n";

    [Theory]
    [InlineData("application/pkcs7-mime; smime-type=signed-data; name=smime.p7m", "signed-data")]
    [InlineData("application/x-pkcs7-mime; smime-type=certs-only", "certs-only")]
    [InlineData("application/pkcs7-mime; smime-type=compressed-data", "compressed-data")]
    [InlineData("application/pkcs7-mime; name=smime.p7m", "smime-type")]
    [InlineData("application/pgp-signature", "OpenPGP signature")]
    [InlineData("application/pkcs7-signature; name=smime.p7s", "certificate")]
    [InlineData("application/x-pkcs7-signature", "certificate")]
    [InlineData("application/pgp-keys; name=OpenPGP_0x1234.asc", "OpenPGP key")]
    [InlineData("message/disposition-notification", "read receipt")]
    [InlineData("message/delivery-status", "delivery report")]
    [InlineData("message/global-delivery-status", "delivery report")]
    [InlineData("message/external-body; access-type=local-file; name=\"/home/alice/x\"", "external-body")]
    public async Task Parts_that_name_the_sender_by_their_format_are_refused(string type, string reason)
    {
        var (_, result) = await Scrub(Encoding.ASCII.GetBytes(Part(type, "Reporting-UA: alice-laptop; Leaky")));

        Assert.False(result.Accepted, type);
        Assert.Contains(reason, result.Refusal);
    }

    [Fact]
    public async Task Message_external_body_is_refused_at_the_top_too()
    {
        var input = Crlf("From: a@a.example\nContent-Type: message/external-body; access-type=URL;\n" +
            " URL=\"http://alice.example/x\"\n\nContent-Type: text/plain\n\n");

        var (_, result) = await Scrub(input);

        Assert.False(result.Accepted);
        Assert.Contains("message/external-body", result.Refusal);
    }

    [Theory]
    [InlineData("bare LF", "From: a@a.example\r\n\r\nline one\nline two\r\n")]
    [InlineData("bare CR", "From: a@a.example\r\n\r\nline one\rline two\r\n")]
    [InlineData("bare CR at end", "From: a@a.example\r\n\r\nline one\r")]
    [InlineData("LF headers", "From: a@a.example\nSubject: x\n\nbody\n")]
    [InlineData("no header", "this is not a message\r\nReceived: from x [203.0.113.1]\r\n\r\nbody\r\n")]
    [InlineData("encoded message", "From: a@a.example\r\nContent-Type: message/rfc822\r\n"
        + "Content-Transfer-Encoding: base64\r\n\r\nUmVjZWl2ZWQ6IGZyb20geA0KDQpib2R5DQo=\r\n")]
    [InlineData("encoded multipart", "From: a@a.example\r\nContent-Type: multipart/mixed; boundary=b\r\n"
        + "Content-Transfer-Encoding: base64\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n")]
    [InlineData("multipart without boundary", "From: a@a.example\r\nContent-Type: multipart/mixed\r\n\r\n"
        + "--b\r\nX-Leak: 1\r\n\r\nx\r\n--b--\r\n")]
    [InlineData("boundary never occurs", "From: a@a.example\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n"
        + "--b\r\nX-Leak: 1\r\n\r\nx\r\n--b--\r\n")]
    [InlineData("two content types", "From: a@a.example\r\nContent-Type: text/plain\r\n"
        + "Content-Type: multipart/mixed; boundary=b\r\n\r\nx\r\n")]
    [InlineData("unknown encoding", "From: a@a.example\r\nContent-Transfer-Encoding: x-secret\r\n\r\nx\r\n")]
    [InlineData("signed", "From: a@a.example\r\nContent-Type: multipart/signed; boundary=b; protocol=\"application/pgp-signature\"\r\n\r\n"
        + "--b\r\n\r\nx\r\n--b\r\nContent-Type: application/pgp-signature\r\n\r\nsig\r\n--b--\r\n")]
    [InlineData("partial", "From: a@a.example\r\nContent-Type: message/partial; id=x; number=1\r\n\r\nx\r\n")]
    [InlineData("empty", "")]
    public async Task What_cannot_be_vouched_for_is_refused_and_the_input_read_to_its_end(string why, string message)
    {
        var (_, result) = await Scrub(Encoding.UTF8.GetBytes(message + new string('x', 20000) + "\r\n"));

        Assert.False(result.Accepted, why);
        Assert.False(string.IsNullOrWhiteSpace(result.Refusal));
        Assert.Empty(result.TraceHeaders);
    }
}
