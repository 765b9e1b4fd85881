using System.Buffers;
using MailKit.Net.Smtp;
using MimeKit;

namespace Sombra.Delivery;

/// <summary>
/// A stored message as it leaves: the release headers, then the stored bytes, unchanged.
/// </summary>
/// <remarks>
/// MailKit sends only MimeMessage objects, and MimeMessage.WriteTo cannot be overridden. So the
/// header section is parsed into the message (MimeKit writes parsed, unmodified headers back byte
/// for byte as long as FormatOptions.International is off, which a test checks) and the rest of
/// the stored body is a <see cref="RawContent"/> entity that copies the stored bytes. Nothing is
/// prepared or re-encoded (see <see cref="OutboundSmtpClient.Prepare"/>).
/// </remarks>
internal static class OutboundMessage
{
    /// <param name="body">Seekable, checked by <see cref="BodyCheck"/>.</param>
    /// <param name="size">Bytes MailKit will hand to the DATA filter (before dot-stuffing).</param>
    public static async Task<(MimeMessage Message, long Size)> CreateAsync(byte[] prefix, Stream body,
        bool endsWithCrlf, bool eightBit, CancellationToken cancellationToken)
    {
        var headerLength = await HeaderSectionLength(body, cancellationToken);
        var headers = new byte[prefix.Length + headerLength];
        prefix.CopyTo(headers, 0);
        body.Position = 0;
        await body.ReadExactlyAsync(headers.AsMemory(prefix.Length), cancellationToken);

        var message = new MimeMessage();
        message.Headers.Clear();
        foreach (var header in HeaderList.Load(new MemoryStream(headers)))
            message.Headers.Add(header);

        // MailKit ends DATA with CRLF "." CRLF; the body's own last CRLF is the first of those.
        // (BDAT, which has no such ending, is used by MailKit only for BODY=BINARYMIME, which
        // Sombra never asks for.)
        var trailer = endsWithCrlf ? 2 : 0;
        var contentStart = headerLength + 2;
        var contentLength = Math.Max(0, body.Length - contentStart - trailer);
        message.Body = new RawContent(body, contentStart, contentLength, eightBit);
        return (message, headers.Length + 2 + contentLength);
    }

    // Up to and including the CRLF before the empty line; the empty line is MimeKit's to write.
    private static async Task<int> HeaderSectionLength(Stream body, CancellationToken ct)
    {
        body.Position = 0;
        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            return await HeaderSectionLength(body, buffer, ct);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static async Task<int> HeaderSectionLength(Stream body, byte[] buffer, CancellationToken ct)
    {
        long position = 0;
        var state = 2; // as if after a CRLF: a body starting with CRLF has no headers
        int n;
        while ((n = await body.ReadAsync(buffer, ct)) > 0)
        {
            for (var i = 0; i < n; i++)
            {
                state = (state, buffer[i]) switch
                {
                    (0, (byte)'\r') or (2, (byte)'\r') => state + 1,
                    (1, (byte)'\n') => 2,
                    (3, (byte)'\n') => 4,
                    _ => 0,
                };
                if (state == 4)
                    return (int)(position + i - 1);
            }
            position += n;
        }
        return (int)Math.Max(0, body.Length - 2);
    }

    /// <summary>The stored content after the header section, copied as it is.</summary>
    /// <remarks>
    /// A MimePart so that MailKit, which asks for BODY=8BITMIME when a part's transfer encoding is
    /// 8bit, sees what the stored body needs. Its own headers are dropped (they would be written
    /// after the stored ones) while the encoding it reports is kept.
    /// </remarks>
    private sealed class RawContent : MimePart
    {
        private readonly Stream _body;
        private readonly long _start;
        private readonly long _length;
        private readonly bool _frozen;

        public RawContent(Stream body, long start, long length, bool eightBit)
            : base("application", "octet-stream")
        {
            (_body, _start, _length) = (body, start, length);
            ContentTransferEncoding = eightBit ? ContentEncoding.EightBit : ContentEncoding.SevenBit;
            _frozen = true;
            Headers.Clear();
        }

        protected override void OnHeadersChanged(HeaderListChangedAction action, Header? header)
        {
            if (!_frozen)
                base.OnHeadersChanged(action, header);
        }

        public override void Prepare(EncodingConstraint constraint, int maxLineLength = 78)
        {
        }

        public override void WriteTo(FormatOptions options, Stream stream, bool contentOnly,
            CancellationToken cancellationToken = default)
        {
            _body.Position = _start;
            var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
            try
            {
                var left = _length;
                while (left > 0)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var n = _body.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
                    if (n == 0)
                        throw new IOException("The stored message ended early.");
                    stream.Write(buffer, 0, n);
                    left -= n;
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        public override async Task WriteToAsync(FormatOptions options, Stream stream, bool contentOnly,
            CancellationToken cancellationToken = default)
        {
            _body.Position = _start;
            var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
            try
            {
                var left = _length;
                while (left > 0)
                {
                    var n = await _body.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, left)),
                        cancellationToken);
                    if (n == 0)
                        throw new IOException("The stored message ended early.");
                    await stream.WriteAsync(buffer.AsMemory(0, n), cancellationToken);
                    left -= n;
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }
}

/// <summary>
/// MailKit's client with the changes Sombra needs: no re-encoding (the stored bytes go out as they
/// are; the caller refuses a hop that lacks what they need), the exact size for SIZE= and BDAT,
/// and per-recipient replies collected instead of the first refusal aborting the transaction.
/// </summary>
internal sealed class OutboundSmtpClient : SmtpClient
{
    // The default constructor installs no protocol logger: nothing of the dialogue is written anywhere.
    public OutboundSmtpClient()
    {
    }

    public long MessageSize { get; set; } = -1;

    public Dictionary<MailboxAddress, SmtpResponse> Refused { get; } = new(ReferenceEqualityComparer.Instance);

    protected override void Prepare(FormatOptions options, MimeMessage message, EncodingConstraint constraint,
        int maxLineLength)
    {
    }

    protected override long GetSize(FormatOptions options, MimeMessage message, CancellationToken cancellationToken) =>
        MessageSize >= 0 ? MessageSize : base.GetSize(options, message, cancellationToken);

    protected override Task<long> GetSizeAsync(FormatOptions options, MimeMessage message,
        CancellationToken cancellationToken) =>
        MessageSize >= 0 ? Task.FromResult(MessageSize) : base.GetSizeAsync(options, message, cancellationToken);

    protected override void OnRecipientNotAccepted(MimeMessage message, MailboxAddress mailbox, SmtpResponse response) =>
        Refused[mailbox] = response;

    // MailKit throws "No recipients were accepted" next; every refusal is already in Refused.
    protected override void OnNoRecipientsAccepted(MimeMessage message)
    {
    }
}
