using Sombra.Anonymity;
using Xunit;
using static Sombra.Tests.Anonymity.ScrubHarness;

namespace Sombra.Tests.Anonymity;

/// <summary>
/// Every change to a kept header is in the report, so that a user who checks with
/// <c>sombra scrub --report</c> sees all that the relay did; and addresses lose what a comment
/// or an obsolete route would otherwise carry out.
/// </summary>
public sealed class ReportTests
{
    private static async Task<(List<string> Headers, List<ScrubNote> Notes, byte[] Output)> Run(string text)
    {
        var (output, result, notes) = await ScrubWithReport(Crlf(text));
        Assert.True(result.Accepted, result.Refusal);
        return (TopHeaders(output), notes, output);
    }

    [Fact]
    public async Task An_address_comment_is_removed_and_never_becomes_a_display_name()
    {
        var (headers, notes, output) = await Run(
            "From: a@a.example\nTo: bob@example.net (via leakc), Carol (work) <carol@example.org>\n\nx\n");

        Assert.Contains("To: bob@example.net, Carol <carol@example.org>", headers);
        Assert.Contains(notes, n => n is { Header: "To", Action: "rewritten", Why: "comments removed" });
        AssertNoToken(output, ["leakc", "work"]);
    }

    [Fact]
    public async Task A_parenthesis_in_a_quoted_name_is_text_not_a_comment()
    {
        var (headers, notes, _) = await Run("From: a@a.example\nTo: \"Bob (Sales)\" <bob@example.net>\n\nx\n");

        Assert.Contains("To: \"Bob (Sales)\" <bob@example.net>", headers);
        Assert.DoesNotContain(notes, n => n.Header == "To");
    }

    [Fact]
    public async Task An_obsolete_source_route_is_cleared()
    {
        var (headers, notes, output) = await Run(
            "From: a@a.example\nCc: <@route.example,@r2.example:carol@example.org>\n\nx\n");

        Assert.Contains("Cc: carol@example.org", headers);
        Assert.Contains(notes, n => n is { Header: "Cc", Why: "source route removed" });
        AssertNoToken(output, ["route.example", "r2.example"]);
    }

    [Fact]
    public async Task Merged_recipient_headers_are_reported()
    {
        var (headers, notes, _) = await Run(
            "From: a@a.example\nTo: bob@example.net\nTo: carol@example.org\n\nx\n");

        Assert.Contains("To: bob@example.net, carol@example.org", headers);
        var note = Assert.Single(notes, n => n.Header == "To");
        Assert.Equal("merged into the first To", note.Why);
    }

    [Fact]
    public async Task Comments_in_content_headers_and_content_id_extras_are_reported()
    {
        var (_, notes, output) = await Run("""
            From: a@a.example
            Content-Type: multipart/related; boundary=b

            --b
            Content-Type: text/html (leak1)
            Content-Transfer-Encoding: Quoted-Printable (leak2)

            <img src=3D"cid:i@example.net">
            --b
            Content-Type: image/png
            Content-ID: <i@example.net> (leak3) <j@example.net>
            Content-Disposition: inline (leak4)
            Content-Transfer-Encoding: base64

            AAEC
            --b--
            """);

        Assert.Contains(notes, n => n is { Where: "part 1", Header: "Content-Type", Why: "comments removed" });
        Assert.Contains(notes,
            n => n is { Where: "part 1", Header: "Content-Transfer-Encoding", Why: "comments removed" });
        Assert.Contains(notes, n => n is { Where: "part 2", Header: "Content-ID", Action: "rewritten" });
        Assert.Contains(notes,
            n => n is { Where: "part 2", Header: "Content-Disposition", Why: "comments removed" });
        AssertNoToken(output, ["leak", "j@example.net"]);
    }

    [Fact]
    public async Task Headers_that_pass_unchanged_get_no_note()
    {
        var (_, notes, _) = await Run("""
            From: a@a.example
            To: Bob Example <bob@example.net>, carol@example.org
            Cc: "Dave D." <dave@example.org>
            Subject: =?utf-8?q?gr=C3=BC=C3=9Fe?=
            In-Reply-To: <p@example.net>
            References: <r@example.net> <p@example.net>
            MIME-Version: 1.0
            Content-Type: text/plain; charset=utf-8
            Content-Transfer-Encoding: 8bit

            x
            """);

        Assert.Equal(["From"], notes.Select(n => n.Header));
    }
}
