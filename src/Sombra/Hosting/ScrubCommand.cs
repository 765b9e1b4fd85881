using System.CommandLine;
using System.Net;
using System.Security.Cryptography;
using Sombra.Anonymity;

namespace Sombra.Hosting;

/// <summary>
/// <c>sombra scrub</c>: the anonymizer offline, so a user can see what would leave before
/// trusting the relay and an operator can test a policy. The output carries the release
/// headers (stamped now) in front of the scrubbed message.
/// </summary>
public static class ScrubCommand
{
    public static Command Create()
    {
        var mode = new Option<string?>("--mode")
        {
            Description = "block or mask (default: Anonymity:Mode of the configuration); per-sender "
                + "decoys use the relay's decoy key if it exists, else a one-time key, and never create one",
        };
        mode.AcceptOnlyFromAmong("block", "mask");
        var report = new Option<bool>("--report")
        {
            Description = "print each removed or rewritten header to standard error",
        };
        var showValues = new Option<bool>("--show-values")
        {
            Description = "with --report, print the original values too",
        };
        var command = new Command("scrub", "Scrub a message from standard input to standard output")
        {
            mode, report, showValues,
        };
        command.SetAction(async (parsed, cancellationToken) =>
        {
            var error = parsed.InvocationConfiguration.Error;
            var options = Cli.LoadOptions(parsed, error);
            if (options is null)
                return Cli.Refused;
            if (parsed.GetValue(mode) is { } chosen)
                options.Anonymity.Mode = chosen;

            var notes = parsed.GetValue(report) ? new List<ScrubNote>() : null;
            var anonymizer = new Anonymizer(options, SenderKey(options, notes));
            var facts = new SessionFacts(IPAddress.Loopback, "localhost", "scrub", Tls: true, Esmtp: true, []);
            var trace = anonymizer.TraceHeaders(facts);

            await using var stdin = Console.OpenStandardInput();
            await using var stdout = Console.OpenStandardOutput();
            var stamp = ReleaseStamp.Headers(trace, DateTimeOffset.UtcNow, options.Anonymity.DatePrecision);
            await stdout.WriteAsync(System.Text.Encoding.ASCII.GetBytes(stamp), cancellationToken);

            var result = await anonymizer.ScrubAsync(new LfToCrlf(stdin), stdout, trace, notes, cancellationToken);
            await stdout.FlushAsync(cancellationToken);

            foreach (var n in notes ?? [])
            {
                var value = parsed.GetValue(showValues) && n.Value is not null ? ": " + OneLine(n.Value) : "";
                error.WriteLine($"{n.Where}: {n.Header} {n.Action} ({n.Why}){value}");
            }
            if (!result.Accepted)
            {
                error.WriteLine($"refused: {result.Refusal} The output is incomplete; discard it.");
                return Cli.Refused;
            }
            return Cli.Ok;
        });
        return command;
    }

    /// <summary>
    /// The relay's per-sender key when it exists. A user trying the command on their own machine
    /// must not find a key file made there; a one-time key picks a decoy of the same shape.
    /// </summary>
    private static byte[]? SenderKey(SombraOptions options, List<ScrubNote>? notes)
    {
        if (options.Anonymity.Mode != "mask" || options.Anonymity.DecoySelection != "per-sender")
            return null;
        var path = Path.Combine(options.DataPath, AnonymityKeys.FileName);
        if (File.Exists(path))
            return SecretFile.LoadOrCreate(path);
        notes?.Add(new ScrubNote("trace", "decoy", "chosen", "with a one-time key: DataDirectory has no "
            + AnonymityKeys.FileName + ", so the relay would choose another", null));
        return RandomNumberGenerator.GetBytes(SecretFile.KeyBytes);
    }

    private static string OneLine(string value) =>
        new(value.Select(c => char.IsControl(c) ? ' ' : c).ToArray());

    /// <summary>
    /// Message files on Unix often end lines in LF alone; a mail client sending them would write
    /// CRLF, so the offline scrub does the same. A bare CR stays and is refused.
    /// </summary>
    private sealed class LfToCrlf(Stream inner) : Sombra.Anonymity.ReadOnlyStream
    {
        private readonly byte[] _buffer = new byte[64 * 1024];
        private byte _previous;
        private bool _pendingLf;

        public override int Read(byte[] buffer, int offset, int count) =>
            ReadAsync(buffer, offset, count).GetAwaiter().GetResult();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (buffer.IsEmpty)
                return 0;
            var written = 0;
            var span = buffer.Span;
            if (_pendingLf)
            {
                span[written++] = (byte)'\n';
                _pendingLf = false;
                _previous = (byte)'\n';
            }
            if (written == buffer.Length)
                return written;

            // Half the room, so that every LF can become two bytes.
            var room = Math.Max(1, (buffer.Length - written) / 2);
            var n = await inner.ReadAsync(_buffer.AsMemory(0, Math.Min(room, _buffer.Length)), cancellationToken);
            span = buffer.Span;
            for (var i = 0; i < n; i++)
            {
                var b = _buffer[i];
                if (b == '\n' && _previous != '\r')
                {
                    span[written++] = (byte)'\r';
                    if (written == buffer.Length)
                    {
                        _pendingLf = true;
                        _previous = (byte)'\r';
                        continue;
                    }
                }
                span[written++] = b;
                _previous = b;
            }
            return written;
        }
    }
}
