using Sombra.Delivery;

namespace Sombra.Tests.Delivery;

/// <summary>
/// The last guard against outbound smuggling: every CR and LF in a stored body must be a CRLF pair,
/// wherever the reads happen to split it.
/// </summary>
public sealed class BodyCheckTests
{
    [Theory]
    [InlineData("a\r\nb\r\n", null, true)]
    [InlineData("a\r\nb", null, false)]
    [InlineData("a\nb\r\n", "a bare LF", false)]
    [InlineData("\nb\r\n", "a bare LF", false)]
    [InlineData("a\rb\r\n", "a bare CR", false)]
    [InlineData("a\r\n\r", "a bare CR", false)]
    [InlineData("", "no content", false)]
    public async Task Finds_what_the_reads_split(string body, string? problem, bool endsWithCrlf)
    {
        for (var chunk = 1; chunk <= 4; chunk++)
        {
            var shape = await BodyCheck.CheckAsync(new Trickle(System.Text.Encoding.ASCII.GetBytes(body), chunk),
                TestContext.Current.CancellationToken);
            Assert.Equal(problem, shape.Problem);
            if (problem is null)
                Assert.Equal(endsWithCrlf, shape.EndsWithCrlf);
        }
    }

    [Fact]
    public async Task Agrees_with_a_byte_by_byte_reading_on_random_bodies()
    {
        var random = new Random(20261204);
        var alphabet = "ab\r\n"u8.ToArray();
        for (var round = 0; round < 2000; round++)
        {
            var body = new byte[random.Next(1, 40)];
            for (var i = 0; i < body.Length; i++)
                body[i] = alphabet[random.Next(alphabet.Length)];
            var shape = await BodyCheck.CheckAsync(new Trickle(body, random.Next(1, 8)),
                TestContext.Current.CancellationToken);
            Assert.Equal(Naive(body), shape.Problem);
        }
    }

    private static string? Naive(byte[] body)
    {
        for (var i = 0; i < body.Length; i++)
        {
            if (body[i] == '\n' && (i == 0 || body[i - 1] != '\r'))
                return "a bare LF";
            if (body[i] == '\r' && (i + 1 == body.Length || body[i + 1] != '\n'))
                return "a bare CR";
        }
        return null;
    }

    /// <summary>A seekable stream that answers every read with at most a few bytes.</summary>
    private sealed class Trickle(byte[] data, int most) : MemoryStream(data, writable: false)
    {
        public override int Read(byte[] buffer, int offset, int count) =>
            base.Read(buffer, offset, Math.Min(count, most));

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(buffer.Length, most)], cancellationToken);
    }
}
