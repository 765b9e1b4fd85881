using System.Text;
using Xunit;
using static Sombra.Tests.Anonymity.ScrubHarness;

namespace Sombra.Tests.Anonymity;

/// <summary>
/// Random header sets and MIME trees with planted tokens in every place that must not survive
/// (unknown and identifying headers, encoded words, boundaries, preambles, epilogues, disposition
/// parameters, paths, attached messages). Seeded and bounded, so a failure replays.
/// </summary>
public sealed class PropertyTests
{
    private static readonly string[] Identifying =
    [
        "Received", "X-Originating-IP", "User-Agent", "X-Mailer", "Organization", "DKIM-Signature",
        "ARC-Seal", "Authentication-Results", "Disposition-Notification-To", "Return-Receipt-To",
        "Content-Language", "Thread-Index", "Bcc", "Return-Path", "Sender", "Reply-To", "Date",
        "Message-ID", "From", "Comments", "Keywords", "Resent-From", "List-Id", "Autocrypt",
    ];

    private sealed class Generator(int seed)
    {
        private readonly Random _random = new(seed);
        private int _tokens;
        public List<string> Planted { get; } = [];

        public string Token()
        {
            var token = $"qz{_tokens++}leak{_random.Next(100000, 999999)}";
            Planted.Add(token);
            return token;
        }

        private string Value()
        {
            var token = Token();
            return _random.Next(4) switch
            {
                0 => token,
                1 => $"=?utf-8?b?{Convert.ToBase64String(Encoding.UTF8.GetBytes("x " + token))}?=",
                2 => $"({token}) <{token}@host.example>",
                _ => $"some text\r\n\t{token} folded",
            };
        }

        public string Headers(bool message, StringBuilder? text = null)
        {
            text ??= new StringBuilder();
            var names = new List<string>();
            for (var i = _random.Next(1, 8); i > 0; i--)
                names.Add(_random.Next(3) == 0 ? $"X-{Token()}" : Identifying[_random.Next(Identifying.Length)]);
            foreach (var name in names)
                text.Append(name).Append(": ").Append(Value()).Append("\r\n");
            if (message)
            {
                text.Append("To: Bob <bob@example.net>\r\n");
                text.Append("Subject: plain subject\r\n");
                text.Append("MIME-Version: 1.0 (").Append(Token()).Append(")\r\n");
                text.Append($"References: <kept@example.net> <{Token()}@[192.0.2.7]> <x@{Token()}>\r\n");
                text.Append($"In-Reply-To: <{Token()}@{Token()}.localdomain>\r\n");
            }
            return text.ToString();
        }

        public string Entity(int depth, bool message)
        {
            var text = new StringBuilder(Headers(message));
            var kind = depth >= 4 ? 0 : _random.Next(4);
            if (kind == 1 || kind == 2)
            {
                var boundary = "b" + Token();
                text.Append($"Content-Type: multipart/{(kind == 1 ? "mixed" : "alternative")}; boundary=\"{boundary}\"; x-{Token()}=1\r\n\r\n");
                if (_random.Next(2) == 0)
                    text.Append("preamble ").Append(Token()).Append("\r\n");
                for (var i = _random.Next(1, 4); i > 0; i--)
                    text.Append("--").Append(boundary).Append("\r\n").Append(Entity(depth + 1, false)).Append("\r\n");
                text.Append("--").Append(boundary).Append("--\r\n");
                if (_random.Next(2) == 0)
                    text.Append("epilogue ").Append(Token()).Append("\r\n");
                return text.ToString();
            }
            if (kind == 3)
            {
                text.Append("Content-Type: message/rfc822\r\n\r\n").Append(Entity(depth + 1, true));
                return text.ToString();
            }
            var bytes = new byte[_random.Next(0, 300)];
            _random.NextBytes(bytes);
            var path = _random.Next(2) == 0 ? $"C:\\\\Users\\\\{Token()}\\\\" : $"/home/{Token()}/";
            text.Append("Content-Type: application/octet-stream\r\n");
            text.Append($"Content-Disposition: attachment; filename=\"{path}file.bin\"; creation-date=\"{Token()}\"; size=3\r\n");
            text.Append($"Content-ID: <{Token()}@host.example>\r\n");
            text.Append("Content-Transfer-Encoding: base64\r\n\r\n");
            text.Append(Convert.ToBase64String(bytes, Base64FormattingOptions.InsertLineBreaks)).Append("\r\n");
            return text.ToString();
        }
    }

    [Fact]
    public async Task No_planted_token_leaks_and_every_leaf_survives()
    {
        for (var seed = 0; seed < 150; seed++)
        {
            var generator = new Generator(seed);
            var input = Encoding.UTF8.GetBytes(generator.Entity(0, true));
            var mode = seed % 2 == 0 ? "block" : "mask";
            var original = SearchableText(input);
            Assert.All(generator.Planted, t => Assert.Contains(t, original));

            var (output, result) = await Scrub(input, Options(mode), seed: seed);

            Assert.True(result.Accepted, $"seed {seed}: {result.Refusal}");
            AssertCrlfOnly(output);
            AssertNoToken(output, generator.Planted);
            Assert.Equal(Leaves(input).Select(l => l.Content), Leaves(output).Select(l => l.Content));
        }
    }
}
