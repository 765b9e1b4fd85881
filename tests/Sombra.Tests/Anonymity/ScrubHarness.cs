using Xunit;
using System.Net;
using System.Text;
using MimeKit;
using Sombra.Anonymity;
using Sombra.Hosting;

namespace Sombra.Tests.Anonymity;

/// <summary>Runs the real anonymizer over bytes and takes its output apart with MimeKit.</summary>
internal static class ScrubHarness
{
    public static readonly SessionFacts Facts = new(
        IPAddress.Parse("203.0.113.99"), "client-helo.example", "someone", Tls: true, Esmtp: true,
        ["bob@example.net"]);

    public static SombraOptions Options(string mode = "block", Action<SombraOptions>? change = null)
    {
        var o = new SombraOptions { HostName = "relay.example" };
        o.Anonymity.Mode = mode;
        change?.Invoke(o);
        ConfigLoader.ApplyListDefaults(o);
        var errors = ConfigValidator.Validate(o);
        Assert.Empty(errors);
        return o;
    }

    public static async Task<(byte[] Output, ScrubResult Result)> Scrub(byte[] input, SombraOptions? options = null,
        SessionFacts? facts = null, int seed = 1, byte[]? key = null)
    {
        var anonymizer = new Anonymizer(options ?? Options(), key);
        var source = new TrickleStream(new MemoryStream(input), seed);
        var output = new MemoryStream();
        var result = await anonymizer.ScrubAsync(source, output, facts ?? Facts, TestContext.Current.CancellationToken);
        Assert.True(source.AtEnd, "the anonymizer must read its input to the end");
        return (output.ToArray(), result);
    }

    /// <summary>The scrub with the report <c>sombra scrub --report</c> prints.</summary>
    public static async Task<(byte[] Output, ScrubResult Result, List<ScrubNote> Notes)> ScrubWithReport(
        byte[] input, SombraOptions? options = null)
    {
        var anonymizer = new Anonymizer(options ?? Options(), null);
        var notes = new List<ScrubNote>();
        var output = new MemoryStream();
        var result = await anonymizer.ScrubAsync(new TrickleStream(new MemoryStream(input), 1), output,
            anonymizer.TraceHeaders(Facts), notes, TestContext.Current.CancellationToken);
        return (output.ToArray(), result, notes);
    }

    public static async Task<byte[]> ScrubAccepted(byte[] input, SombraOptions? options = null, int seed = 1)
    {
        var (output, result) = await Scrub(input, options, seed: seed);
        Assert.True(result.Accepted, result.Refusal);
        AssertCrlfOnly(output);
        return output;
    }

    public static byte[] Crlf(string text) => Encoding.UTF8.GetBytes(text.ReplaceLineEndings("\r\n"));

    public static byte[] Corpus(string name) =>
        Crlf(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Corpus", name), Encoding.UTF8));

    public static IReadOnlyList<string> Tokens(string name) =>
        File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "Corpus", name))
            .Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();

    public static void AssertCrlfOnly(byte[] output)
    {
        for (var i = 0; i < output.Length; i++)
        {
            if (output[i] == '\n')
                Assert.True(i > 0 && output[i - 1] == '\r', $"bare LF at byte {i}");
            if (output[i] == '\r')
                Assert.True(i + 1 < output.Length && output[i + 1] == '\n', $"bare CR at byte {i}");
        }
        Assert.True(output.Length >= 2 && output[^2] == '\r' && output[^1] == '\n', "output must end in CRLF");
    }

    public static MimeMessage Parse(byte[] message) => MimeMessage.Load(new MemoryStream(message));

    /// <summary>Every leaf part in document order, entering attached messages, with its decoded bytes.</summary>
    public static List<(string Type, byte[] Content)> Leaves(byte[] message)
    {
        var leaves = new List<(string, byte[])>();
        Walk(Parse(message).Body, leaves);
        return leaves;
    }

    private static void Walk(MimeEntity? entity, List<(string, byte[])> leaves)
    {
        switch (entity)
        {
            case Multipart multipart:
                foreach (var child in multipart)
                    Walk(child, leaves);
                break;
            case MessagePart { Message: { } inner }:
                Walk(inner.Body, leaves);
                break;
            case MimePart part:
                var content = new MemoryStream();
                part.Content?.DecodeTo(content);
                leaves.Add((part.ContentType.MimeType.ToLowerInvariant(), content.ToArray()));
                break;
        }
    }

    /// <summary>The raw output and every header value at every level, decoded, as one text.</summary>
    public static string SearchableText(byte[] output)
    {
        var text = new StringBuilder(Encoding.UTF8.GetString(output));
        void Headers(HeaderList headers)
        {
            foreach (var h in headers)
                text.Append('\n').Append(h.Field).Append(": ").Append(h.Value);
        }
        void Entity(MimeEntity? e)
        {
            if (e is null)
                return;
            Headers(e.Headers);
            foreach (var p in e.ContentType.Parameters)
                text.Append('\n').Append(p.Name).Append('=').Append(p.Value);
            if (e.ContentDisposition is { } cd)
                foreach (var p in cd.Parameters)
                    text.Append('\n').Append(p.Name).Append('=').Append(p.Value);
            if (e is Multipart m)
            {
                text.Append('\n').Append(m.Preamble).Append('\n').Append(m.Epilogue);
                foreach (var c in m)
                    Entity(c);
            }
            else if (e is MessagePart { Message: { } inner })
            {
                Headers(inner.Headers);
                Entity(inner.Body);
            }
        }
        var message = Parse(output);
        Headers(message.Headers);
        Entity(message.Body);
        return text.ToString();
    }

    public static void AssertNoToken(byte[] output, IEnumerable<string> tokens)
    {
        var text = SearchableText(output);
        foreach (var token in tokens)
            Assert.False(text.Contains(token, StringComparison.OrdinalIgnoreCase), $"token '{token}' survived");
    }

    /// <summary>The header lines of the top-level block, unfolded.</summary>
    public static List<string> TopHeaders(byte[] output)
    {
        var text = Encoding.UTF8.GetString(output);
        var block = text[..text.IndexOf("\r\n\r\n", StringComparison.Ordinal)];
        return block.Replace("\r\n ", " ").Replace("\r\n\t", " ").Split("\r\n").ToList();
    }
}

/// <summary>
/// A non-seekable input that hands out data in small, irregular reads, as a socket does, so
/// that CRLF pairs and boundaries fall across read boundaries.
/// </summary>
internal sealed class TrickleStream(Stream inner, int seed) : Sombra.Anonymity.ReadOnlyStream
{
    private readonly Random _random = new(seed);

    public bool AtEnd => inner.Position == inner.Length;

    public override int Read(byte[] buffer, int offset, int count) =>
        inner.Read(buffer, offset, Math.Min(count, _random.Next(1, 3000)));

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        inner.ReadAsync(buffer[..Math.Min(buffer.Length, _random.Next(1, 3000))], cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
}
