using System.Text;
using Xunit;
using static Sombra.Tests.Anonymity.ScrubHarness;

namespace Sombra.Tests.Anonymity;

public sealed class HeaderAndMimeTests
{
    private const string Multipart = """
        From: Alice <alice@alice.example>
        To: bob@example.net
        Subject: hello
        Content-Type: multipart/mixed; boundary="client-boundary-1"

        preamble text
        --client-boundary-1
        Content-Type: text/plain; charset=utf-8

        body one
        --client-boundary-1
        Content-Type: multipart/alternative; boundary="client-boundary-2"

        --client-boundary-2
        Content-Type: text/plain

        alt text
        --client-boundary-2
        Content-Type: text/html

        <p>alt</p>
        --client-boundary-2--
        inner epilogue
        --client-boundary-1--
        outer epilogue
        """;

    [Fact]
    public async Task Headers_outside_the_allow_list_are_dropped_after_unfolding()
    {
        var input = Crlf("""
            Received: from x ([203.0.113.5]) by y; Tue, 3 Mar 2026 10:00:00 +0100
            X-Originating-IP: [203.0.113.5]
            X-Brand-New-Header-2031: leak-a
            Bcc: hidden@example.com
            User-Agent: Leaky/1.0
            Organization: Leak Org
            Disposition-Notification-To: alice@alice.example
            Return-Receipt-To: alice@alice.example
            Content-Language: fr
            Thread-Index: leak-b
            Return-Path: <alice@alice.example>
            Sender: alice@alice.example
            Reply-To: alice@alice.example
            Date: Tue, 3 Mar 2026 10:00:00 +0100
            Message-ID: <leak-c@alice.example>
            From: Alice <alice@alice.example>
            To: bob@example.net
            Cc: carol@example.org
            Subject: hello
            In-Reply-To: <parent@example.net>
            References: <root@example.net> (comment leak-d)
             <parent@example.net>
            MIME-Version: 1.0 (Leaky Mail 2.0)

            body
            """);

        var output = await ScrubAccepted(input);

        var headers = TopHeaders(output);
        Assert.Equal(
            ["From", "To", "Cc", "Subject", "Message-ID", "In-Reply-To", "References", "MIME-Version"],
            headers.Select(h => h[..h.IndexOf(':')]));
        Assert.Contains("References: <root@example.net> <parent@example.net>", headers);
        Assert.Contains("MIME-Version: 1.0", headers);
        AssertNoToken(output, ["203.0.113.5", "leak-", "hidden", "Leaky", "Leak Org", "alice", "2026", "Content-Language", "Thread-Index"]);
    }

    [Fact]
    public async Task Operators_can_keep_more_headers()
    {
        var input = Crlf("From: a@a.example\nList-Id: <kept.example>\nX-Other: dropped\n\nbody\n");
        var options = Options(change: o => o.Anonymity.KeepHeaders.Add("List-Id"));

        var output = await ScrubAccepted(input, options);

        Assert.Contains("List-Id: <kept.example>", TopHeaders(output));
        Assert.DoesNotContain("X-Other", Encoding.UTF8.GetString(output));
    }

    [Fact]
    public async Task The_anonymous_sender_has_the_configured_name_and_address()
    {
        var options = Options(change: o =>
        {
            o.Anonymity.SenderAddress = "nobody@relay.example";
            o.Anonymity.SenderName = "Nobody";
        });

        var output = await ScrubAccepted(Crlf("From: Alice <alice@alice.example>\n\nbody\n"), options);

        Assert.Contains("From: Nobody <nobody@relay.example>", TopHeaders(output));
    }

    [Theory]
    [InlineData("Subject: =?utf-8?q?hello=0D=0ABcc:_victim@example.com?=")]
    [InlineData("Subject: =?utf-8?b?aGVsbG8NCkJjYzogdmljdGltQGV4YW1wbGUuY29t?=")]
    [InlineData("To: =?utf-8?q?Bob=0D=0ABcc:_victim@example.com?= <bob@example.net>")]
    [InlineData("Content-Description: =?utf-8?q?x=0D=0ABcc:_victim@example.com?=")]
    public async Task A_decoded_CR_or_LF_never_becomes_a_header(string header)
    {
        var input = Crlf($"From: a@a.example\n{header}\nContent-Type: text/plain\n\nbody\n");

        var output = await ScrubAccepted(input);

        var text = Encoding.UTF8.GetString(output);
        Assert.DoesNotContain("\r\nBcc:", text, StringComparison.OrdinalIgnoreCase);
        var message = Parse(output);
        Assert.Empty(message.Bcc);
        Assert.DoesNotContain(message.Headers, h => h.Field.Equals("Bcc", StringComparison.OrdinalIgnoreCase));
        foreach (var h in message.Headers)
            Assert.DoesNotContain('\n', h.Value);
    }

    [Fact]
    public async Task Every_boundary_is_regenerated_and_preambles_and_epilogues_go()
    {
        var input = Crlf(Multipart);

        var first = await ScrubAccepted(input, seed: 1);
        var second = await ScrubAccepted(input, seed: 2);

        foreach (var output in new[] { first, second })
        {
            var text = Encoding.UTF8.GetString(output);
            Assert.DoesNotContain("client-boundary", text);
            Assert.DoesNotContain("preamble", text);
            Assert.DoesNotContain("epilogue", text);
            Assert.Equal(Leaves(input).Select(l => l.Content), Leaves(output).Select(l => l.Content));
        }
        var outer1 = Assert.IsType<MimeKit.Multipart>(Parse(first).Body);
        var outer2 = Assert.IsType<MimeKit.Multipart>(Parse(second).Body);
        var inner1 = Assert.IsAssignableFrom<MimeKit.Multipart>(outer1[1]);
        Assert.NotEqual(outer1.Boundary, outer2.Boundary);
        Assert.NotEqual(outer1.Boundary, inner1.Boundary);
        Assert.Matches("^=_[a-z2-7]{28}$", outer1.Boundary);
        Assert.Matches("^=_[a-z2-7]{28}$", inner1.Boundary);
    }

    [Fact]
    public async Task Content_disposition_keeps_the_disposition_and_the_base_file_name()
    {
        var input = Crlf("""
            From: a@a.example
            Content-Type: multipart/mixed; boundary=b

            --b
            Content-Type: application/octet-stream; name="C:\Users\alice\Desktop\plan.pdf"; x-mac-type=leak1
            Content-Disposition: attachment; filename="C:\Users\alice\Desktop\plan.pdf";
             creation-date="Tue, 03 Mar 2026 09:00:00 +0100";
             modification-date="Tue, 03 Mar 2026 09:01:00 +0100";
             read-date="Tue, 03 Mar 2026 09:02:00 +0100"; size=3
            Content-Transfer-Encoding: base64

            AAEC
            --b
            Content-Type: text/plain
            Content-Disposition: INLINE; filename*=utf-8''%2Fhome%2Falice%2Fn%C3%B6tes.txt

            notes
            --b--
            """);

        var output = await ScrubAccepted(input);

        var parts = Parse(output).BodyParts.ToList();
        Assert.All(parts, p => Assert.NotNull(p.ContentDisposition));
        Assert.Equal("attachment", parts[0].ContentDisposition!.Disposition);
        Assert.Equal("plan.pdf", parts[0].ContentDisposition!.FileName);
        Assert.Single(parts[0].ContentDisposition!.Parameters);
        Assert.Equal("plan.pdf", parts[0].ContentType.Name);
        Assert.Equal("inline", parts[1].ContentDisposition!.Disposition);
        Assert.Equal("nötes.txt", parts[1].ContentDisposition!.FileName);
        AssertNoToken(output, ["alice", "Users", "2026", "size", "leak1", "Desktop"]);
    }

    [Theory]
    [InlineData(@"C:\Users\alice\b.txt", "b.txt")]
    [InlineData("c:/Users/alice/b.txt", "b.txt")]
    [InlineData(@"\\fileserver\alice$\plan.pdf", "plan.pdf")]
    [InlineData("/home/alice/x", "x")]
    [InlineData("~/Documents/x.odt", "x.odt")]
    [InlineData("file:///Users/alice/x.pages", "x.pages")]
    [InlineData("=?utf-8?q?/home/alice/n=C3=B6tes.txt?=", "nötes.txt")]
    [InlineData("Q1/Q2 report", "Q1/Q2 report")]
    [InlineData("PGP/MIME version identification", "PGP/MIME version identification")]
    public async Task A_content_description_that_is_a_path_is_cut_to_its_base_name(string value, string kept)
    {
        var input = Crlf($"From: a@a.example\nContent-Type: text/plain\nContent-Description: {value}\n\nx\n");

        var output = await ScrubAccepted(input);

        Assert.Equal(kept, Parse(output).Body!.Headers["Content-Description"]);
        if (kept != value)
            AssertNoToken(output, ["alice"]);
    }

    [Fact]
    public async Task Eight_bit_and_binary_content_stays_intact()
    {
        var body = new byte[4096];
        new Random(7).NextBytes(body);
        for (var i = 0; i < body.Length; i++)
            if (body[i] is (byte)'\r' or (byte)'\n')
                body[i] = 0xE9;
        for (var i = 70; i < body.Length; i += 71)
            (body[i - 1], body[i]) = ((byte)'\r', (byte)'\n');
        var head = Crlf("From: a@a.example\nContent-Type: multipart/mixed; boundary=b\n\n--b\n" +
            "Content-Type: application/octet-stream\nContent-Transfer-Encoding: binary\n\n");
        var input = head.Concat(body).Concat(Crlf("\n--b--\n")).ToArray();

        var (output, result) = await Scrub(input);

        Assert.True(result.Accepted, result.Refusal);
        Assert.True(result.Needs8BitMime);
        Assert.False(result.NeedsSmtpUtf8);
        Assert.Equal(body, Leaves(output)[0].Content);
        Assert.Contains("Content-Transfer-Encoding: binary", Encoding.ASCII.GetString(output));
    }

    [Fact]
    public async Task Seven_bit_mail_needs_neither_extension_and_utf8_addresses_need_smtputf8()
    {
        var (_, plain) = await Scrub(Crlf("From: a@a.example\nSubject: =?utf-8?q?gr=C3=BC=C3=9F?=\n\nhi\n"));
        Assert.False(plain.Needs8BitMime);
        Assert.False(plain.NeedsSmtpUtf8);

        var (output, utf8) = await Scrub(Crlf("From: a@a.example\nTo: jörg@example.org\n\nhi\n"));
        Assert.True(utf8.Accepted, utf8.Refusal);
        Assert.True(utf8.NeedsSmtpUtf8);
        Assert.Contains("To: jörg@example.org", TopHeaders(output));
    }

    [Fact]
    public async Task Attached_messages_are_scrubbed_the_same_way()
    {
        var input = Crlf("""
            From: a@a.example
            Content-Type: multipart/mixed; boundary=b

            --b
            Content-Type: message/rfc822

            Received: from inner ([198.51.100.9]) by z
            X-Mailer: InnerLeak 1.0
            From: Inner <inner@inner.example>
            Date: Mon, 2 Mar 2026 10:00:00 +0100
            Message-ID: <inner-leak@inner.example>
            Subject: inner subject
            Content-Type: multipart/alternative; boundary=innerb

            --innerb
            Content-Type: text/plain

            inner body
            --innerb--
            --b--
            """);

        var output = await ScrubAccepted(input);

        var inner = Assert.IsType<MimeKit.MessagePart>(Parse(output).BodyParts.First()).Message!;
        Assert.Equal("inner subject", inner.Subject);
        Assert.Equal("anonymous@relay.example", inner.From.Mailboxes.Single().Address);
        Assert.Equal(Leaves(input).Select(l => l.Content), Leaves(output).Select(l => l.Content));
        AssertNoToken(output, ["198.51.100.9", "InnerLeak", "inner.example", "inner-leak", "innerb", "2026"]);
    }

    [Fact]
    public async Task Disclosure_in_block_mode_names_the_abuse_contact()
    {
        var options = Options(change: o =>
        {
            o.Anonymity.Disclosure = true;
            o.Abuse.Contact = "abuse@relay.example";
        });

        var output = await ScrubAccepted(Crlf("From: a@a.example\n\nbody\n"), options);

        var comment = Assert.Single(TopHeaders(output), h => h.StartsWith("Comments:"));
        Assert.Contains("anonymized", comment);
        Assert.Contains("abuse@relay.example", comment);
    }

    [Fact]
    public async Task Mask_mode_never_reveals_anonymization()
    {
        var options = Options("mask", o =>
        {
            o.Anonymity.Disclosure = true;
            o.Abuse.Contact = "abuse@relay.example";
        });

        var output = await ScrubAccepted(Crlf("From: a@a.example\n\nbody\n"), options);

        Assert.DoesNotContain("Comments:", Encoding.UTF8.GetString(output));
        Assert.DoesNotContain("anonymi", Encoding.UTF8.GetString(output).Replace("anonymous@", ""));
        Assert.DoesNotContain("abuse@", Encoding.UTF8.GetString(output));
    }

    [Fact]
    public async Task Without_disclosure_no_comment_is_added()
    {
        var output = await ScrubAccepted(Crlf("From: a@a.example\n\nbody\n"));

        Assert.DoesNotContain(TopHeaders(output), h => h.StartsWith("Comments:"));
    }

    [Fact]
    public async Task A_message_without_final_line_end_ends_in_crlf_and_keeps_its_body()
    {
        var input = Encoding.ASCII.GetBytes("From: a@a.example\r\n\r\nno final newline");

        var output = await ScrubAccepted(input);

        Assert.EndsWith("\r\n\r\nno final newline\r\n", Encoding.ASCII.GetString(output));
    }
}
