using Xunit;
using static Sombra.Tests.Anonymity.ScrubHarness;

namespace Sombra.Tests.Anonymity;

/// <summary>
/// Encrypted mail to a journalist is a core use: it passes as the sender made it, unread, and
/// the report says so, since a signature inside it is beyond the relay's sight.
/// </summary>
public sealed class EncryptedContentTests
{
    private const string PgpMime = """
        From: Alice <alice@alice.example>
        To: bob@example.net
        Subject: ...
        MIME-Version: 1.0
        Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";
         boundary="------------enig2A3B4C5D"

        This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)
        --------------enig2A3B4C5D
        Content-Type: application/pgp-encrypted
        Content-Description: PGP/MIME version identification

        Version: 1

        --------------enig2A3B4C5D
        Content-Type: application/octet-stream; name="encrypted.asc"
        Content-Description: OpenPGP encrypted message
        Content-Disposition: inline; filename="encrypted.asc"

        -----BEGIN PGP MESSAGE-----
        Comment: alice-laptop GnuPG

        hQEMA5Vb8B8q0eRMAQf/Y2lwaGVydGV4dA==
        =AbCd
        -----END PGP MESSAGE-----

        --------------enig2A3B4C5D--
        """;

    private const string Smime = """
        From: Alice <alice@alice.example>
        To: bob@example.net
        Subject: x
        MIME-Version: 1.0
        Content-Type: application/pkcs7-mime; name="smime.p7m"; smime-type=enveloped-data
        Content-Transfer-Encoding: base64
        Content-Disposition: attachment; filename="smime.p7m"

        MIAGCSqGSIb3DQEHA6CAMIACAQAxggFMMIIBSAIBADAwMCgxEjAQBgNVBAMMCWJvYkBleGFt
        cGxlMRIwEAYDVQQKDAlFeGFtcGxlIE9yZwIEAQ==
        """;

    [Theory]
    [InlineData(PgpMime)]
    [InlineData(Smime)]
    public async Task Encrypted_content_passes_intact_and_the_report_says_it_was_not_read(string text)
    {
        var input = Crlf(text);

        var (output, result, notes) = await ScrubWithReport(input);

        Assert.True(result.Accepted, result.Refusal);
        Assert.Equal(Leaves(input).Select(l => l.Content), Leaves(output).Select(l => l.Content));
        var note = Assert.Single(notes, n => n.Header == "encrypted content");
        Assert.Equal("message", note.Where);
        Assert.Equal("passed unread", note.Action);
        AssertNoToken(output, ["alice.example", "enig2A3B4C5D"]);
    }

    [Fact]
    public async Task Plain_content_gets_no_encryption_note()
    {
        var (_, result, notes) = await ScrubWithReport(Crlf("From: a@a.example\n\nhello\n"));

        Assert.True(result.Accepted, result.Refusal);
        Assert.DoesNotContain(notes, n => n.Header == "encrypted content");
    }
}
