using Sombra.Anonymity;
using Xunit;
using static Sombra.Tests.Anonymity.ScrubHarness;

namespace Sombra.Tests.Anonymity;

/// <summary>
/// In-Reply-To and References keep what threading needs and lose what names the sender's
/// machine; Content-ID stays only where HTML can refer to it.
/// </summary>
public sealed class ThreadingTests
{
    [Theory]
    [InlineData("20240101100000.GA1234@[198.51.100.7]", true)]
    [InlineData("y@[IPv6:2001:db8::7]", true)]
    [InlineData("x@alice-laptop", true)]
    [InlineData("x@alice-laptop.localdomain", true)]
    [InlineData("x@Alice-MacBook.LOCAL.", true)]
    [InlineData("x@nas.home.arpa", true)]
    [InlineData("x@pc17.corp", true)]
    [InlineData("x@10.0.0.5", true)]
    [InlineData("x@localhost", true)]
    [InlineData("CAHb1x9+Qm3T0=vKd8f2LrR@mail.gmail.com", false)]
    [InlineData("x@example.net", false)]
    [InlineData("x@localbank.example", false)]
    [InlineData("no-at-sign", false)]
    public void Ids_that_name_the_senders_machine_are_recognized(string id, bool local)
    {
        Assert.Equal(local, MessageIdRules.NamesSenderMachine(id));
    }

    [Fact]
    public async Task A_self_reply_loses_the_ids_of_the_senders_machine_and_keeps_the_others()
    {
        var input = Corpus("mutt-self-reply.eml");

        var (output, result, notes) = await ScrubWithReport(input);

        Assert.True(result.Accepted, result.Refusal);
        var headers = TopHeaders(output);
        Assert.Contains("References: <CAF7q2Lk=Z0v3@mail.example.net>", headers);
        Assert.DoesNotContain(headers, h => h.StartsWith("In-Reply-To:", StringComparison.Ordinal));
        Assert.Contains(notes, n => n is { Header: "In-Reply-To", Action: "removed" });
        Assert.Contains(notes,
            n => n is { Header: "References", Action: "reduced" } && n.Why.StartsWith("5 id"));
    }

    [Fact]
    public async Task An_outlook_reply_keeps_its_thread_and_the_inline_images_content_id_only()
    {
        var output = await ScrubAccepted(Corpus("outlook-reply.eml"));

        var message = Parse(output);
        Assert.Equal("CAHb1x9+Qm3T0=vKd8f2LrR@mail.example.net", message.InReplyTo);
        Assert.Equal(["CAHb1x9+Qm3T0=vKd8f2LrR@mail.example.net"], message.References);
        var parts = message.BodyParts.ToList();
        var image = Assert.Single(parts, p => p.ContentType.MimeType == "image/png");
        Assert.Equal("image001.png@01DA6E3F.8A2B4C10", image.ContentId);
        var pdf = Assert.Single(parts, p => p.ContentType.MimeType == "application/pdf");
        Assert.Null(pdf.ContentId);
    }

    [Fact]
    public async Task Comments_between_ids_go_and_the_report_says_so()
    {
        var input = Crlf("From: a@a.example\nReferences: <r@example.net> (leak) junk\n <p@example.net>\n" +
            "In-Reply-To: <p@example.net>\n\nx\n");

        var (output, _, notes) = await ScrubWithReport(input);

        Assert.Contains("References: <r@example.net> <p@example.net>", TopHeaders(output));
        Assert.Contains(notes, n => n is { Header: "References", Action: "rewritten" });
        Assert.DoesNotContain(notes, n => n.Header == "In-Reply-To");
    }
}
