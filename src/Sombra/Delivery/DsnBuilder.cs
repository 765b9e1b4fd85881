using System.Text;
using System.Text.RegularExpressions;
using MimeKit;
using MimeKit.Utils;
using Sombra.Anonymity;
using Sombra.Queue;

namespace Sombra.Delivery;

/// <summary>
/// The RFC 3464 delivery status notification for recipients that failed for good. It goes to the
/// account's notification address only, from the null sender (RFC 5321 section 4.5.5, so that it
/// can never bounce in turn), and quotes only the stored, already anonymized headers.
/// </summary>
internal static partial class DsnBuilder
{
    // A reply ("451 4.4.1 text") or a status of our own ("5.4.7 text", see RetrySchedule.Expired).
    [GeneratedRegex(@"^(?:\d{3}[ -])?([245]\.\d{1,3}\.\d{1,3})\b")]
    private static partial Regex EnhancedStatus();

    /// <summary>The RFC 3463 status of a reply: its own enhanced code, or a default by class.</summary>
    public static string StatusOf(string? detail)
    {
        if (detail is not null && EnhancedStatus().Match(detail) is { Success: true } m)
            return m.Groups[1].Value;
        return detail is not null && detail.StartsWith('4') ? "4.0.0" : "5.0.0";
    }

    /// <summary>The next hop's own reply within a recorded error, or null when it holds none.</summary>
    private static string? DiagnosticOf(string? error)
    {
        if (error is null)
            return null;
        var marker = error.IndexOf(RetrySchedule.LastReplyMarker, StringComparison.Ordinal);
        if (marker >= 0)
            error = error[(marker + RetrySchedule.LastReplyMarker.Length)..];
        return error.Length > 3 && char.IsAsciiDigit(error[0]) && char.IsAsciiDigit(error[1])
            && char.IsAsciiDigit(error[2]) && error[3] is ' ' or '-' ? error : null;
    }

    /// <summary>Writes the DSN (CRLF lines, no Date: that is written at release) to <paramref name="output"/>.</summary>
    public static async Task WriteAsync(Stream output, string hostName, QueuedMessage original,
        IReadOnlyList<QueuedRecipient> failed, Stream originalBody, CancellationToken ct)
    {
        var message = new MimeMessage();
        message.Headers.Clear();
        message.From.Add(new MailboxAddress("Mail Delivery System", "MAILER-DAEMON@" + hostName));
        message.To.Add(new MailboxAddress("", original.Envelope.NotifyAddress!));
        message.Subject = "Undelivered mail";
        // MimeKit's default Message-ID would carry the machine's name.
        message.MessageId = MimeUtils.GenerateMessageId(hostName);
        message.Headers.Add("Auto-Submitted", "auto-replied");

        var text = new StringBuilder();
        text.Append("A message queued as ").Append(original.Id)
            .Append(" could not be delivered to these recipients:\r\n\r\n");
        foreach (var r in failed)
            text.Append("  ").Append(r.Address).Append(": ").Append(r.LastError ?? "failed").Append("\r\n");
        var report = new MultipartReport("delivery-status")
        {
            new TextPart("plain") { Text = text.ToString() },
        };

        var status = new MessageDeliveryStatus();
        var perMessage = new HeaderList
        {
            { "Reporting-MTA", "dns; " + hostName },
            { "Arrival-Date", ReleaseStamp.FormatDate(original.CreatedAt) },
        };
        status.StatusGroups.Add(perMessage);
        foreach (var r in failed)
        {
            var group = new HeaderList
            {
                { "Final-Recipient", "rfc822; " + r.Address },
                { "Action", "failed" },
                { "Status", StatusOf(r.LastError) },
            };
            if (DiagnosticOf(r.LastError) is { } reply)
                group.Add("Diagnostic-Code", "smtp; " + reply);
            group.Add("Last-Attempt-Date", ReleaseStamp.FormatDate(r.NextAttempt));
            status.StatusGroups.Add(group);
        }
        report.Add(status);

        // RFC 3462: the headers of the undelivered message, as stored (scrubbed).
        var headers = await ReadHeaderSection(originalBody, ct);
        var eightBit = headers.Any(b => b >= 0x80);
        report.Add(new MimePart("text", "rfc822-headers")
        {
            Content = new MimeContent(new MemoryStream(headers)),
            ContentTransferEncoding = eightBit ? ContentEncoding.QuotedPrintable : ContentEncoding.SevenBit,
        });
        message.Body = report;

        var format = FormatOptions.Default.Clone();
        format.NewLineFormat = NewLineFormat.Dos;
        message.Headers.Remove(HeaderId.Date);
        await message.WriteToAsync(format, output, ct);
    }

    private static async Task<byte[]> ReadHeaderSection(Stream body, CancellationToken ct)
    {
        const int Limit = 64 * 1024;
        body.Position = 0;
        var buffer = new byte[Limit];
        var n = 0;
        int read;
        while (n < Limit && (read = await body.ReadAsync(buffer.AsMemory(n), ct)) > 0)
            n += read;
        var span = buffer.AsSpan(0, n);
        var end = span.IndexOf("\r\n\r\n"u8);
        return span[..(end >= 0 ? end + 2 : n)].ToArray();
    }
}
