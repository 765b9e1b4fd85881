using Xunit;
using System.Text;

namespace Sombra.Tests.Anonymity;

/// <summary>Messages shaped like real clients' (see Corpus/README.md), through both modes.</summary>
public sealed class CorpusTests
{
    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var file in Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "Corpus"), "*.eml").Order())
            foreach (var mode in new[] { "block", "mask" })
                data.Add(Path.GetFileNameWithoutExtension(file), mode);
        return data;
    }

    [Fact]
    public void The_corpus_has_every_client_of_the_issue()
    {
        var names = Cases().Select(c => (string)c.Data.Item1).Distinct().ToList();
        // Ten clients, and two replies whose threading headers and Content-IDs name the sender.
        Assert.Equal(12, names.Count);
        foreach (var name in names)
            Assert.NotEmpty(ScrubHarness.Tokens(name + ".tokens"));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task No_identifying_token_survives(string name, string mode)
    {
        var input = ScrubHarness.Corpus(name + ".eml");
        var tokens = ScrubHarness.Tokens(name + ".tokens");
        var original = Encoding.UTF8.GetString(input);
        foreach (var token in tokens)
            Assert.True(original.Contains(token, StringComparison.OrdinalIgnoreCase), $"{name} lacks its token {token}");

        var output = await ScrubHarness.ScrubAccepted(input, ScrubHarness.Options(mode));

        ScrubHarness.AssertNoToken(output, tokens);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Every_body_and_attachment_decodes_to_the_same_bytes(string name, string mode)
    {
        var input = ScrubHarness.Corpus(name + ".eml");

        var output = await ScrubHarness.ScrubAccepted(input, ScrubHarness.Options(mode));

        var before = ScrubHarness.Leaves(input);
        var after = ScrubHarness.Leaves(output);
        Assert.Equal(before.Count, after.Count);
        for (var i = 0; i < before.Count; i++)
        {
            Assert.Equal(before[i].Type, after[i].Type);
            Assert.Equal(before[i].Content, after[i].Content);
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task The_output_has_no_date_or_trace_and_the_anonymous_sender(string name, string mode)
    {
        var output = await ScrubHarness.ScrubAccepted(ScrubHarness.Corpus(name + ".eml"), ScrubHarness.Options(mode));

        var message = ScrubHarness.Parse(output);
        Assert.DoesNotContain(message.Headers, h => h.Field is "Date" or "Received" or "Bcc" or "Return-Path");
        Assert.Equal("anonymous@relay.example", Assert.Single(message.From.Mailboxes).Address);
        Assert.Matches("^<[a-z2-7]{26}@relay.example>$", message.Headers["Message-ID"]);
        Assert.Contains(message.To.Mailboxes, m => m.Address == "bob@example.net");
    }
}
