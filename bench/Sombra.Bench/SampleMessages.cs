using System.Text;

namespace Sombra.Bench;

/// <summary>
/// The two inputs of scenario 6, made here rather than read from the test corpus so that their
/// sizes are what the issue names and the benchmark does not depend on the tests' files.
/// </summary>
internal static class SampleMessages
{
    private const string Paragraph = "Hello Bob, here are my notes from the meeting on the quarterly "
        + "figures. Grüße, and see you on Thursday.";

    /// <summary>A desktop client's everyday message: Thunderbird's headers, text and HTML.</summary>
    public static byte[] Desktop4K()
    {
        var paragraphs = 0;
        while (Desktop(paragraphs + 1).Length <= 4096)
            paragraphs++;
        return Desktop(paragraphs);
    }

    private static byte[] Desktop(int paragraphs)
    {
        const string boundary = "------------8rZ0Gk1fWc2XJv6mTn9QYhLs";
        var text = string.Concat(Enumerable.Repeat(Paragraph + "\n\n", paragraphs));
        var html = string.Concat(Enumerable.Repeat($"    <p>{Paragraph}</p>\n", paragraphs));
        return Crlf($"""
            Message-ID: <0c6e5b7a-1f2d-4e8a-9b3c-7d2f1a6e4c58@alice-tb.example>
            Date: Tue, 3 Mar 2026 10:23:45 +0100
            MIME-Version: 1.0
            User-Agent: Mozilla Thunderbird
            Content-Language: en-GB
            To: Bob Example <bob@example.net>
            Cc: team@example.org
            From: Alice Liddell <alice@alice-tb.example>
            Subject: Notes from the meeting
            Disposition-Notification-To: Alice Liddell <alice@alice-tb.example>
            Content-Type: multipart/alternative;
             boundary="{boundary}"

            This is a multi-part message in MIME format.
            --{boundary}
            Content-Type: text/plain; charset=UTF-8; format=flowed
            Content-Transfer-Encoding: 8bit

            {text}
            --{boundary}
            Content-Type: text/html; charset=UTF-8
            Content-Transfer-Encoding: 8bit

            <!DOCTYPE html>
            <html>
              <head>
                <meta http-equiv="content-type" content="text/html; charset=UTF-8">
              </head>
              <body>
            {html}  </body>
            </html>

            --{boundary}--

            """);
    }

    /// <summary>About 10 MiB: a short text and three base64 attachments (60, 30 and 10 % of it).</summary>
    public static byte[] WithAttachments10M()
    {
        const string boundary = "------------Qx3Lb7Vn0Rk2Tz8Wm5Yc1Hd4";
        var random = new Random(5);
        var message = new StringBuilder($"""
            Message-ID: <a3b1c9d2-5e7f-4a10-8c2b-6f9e0d1a2b3c@alice-tb.example>
            Date: Tue, 3 Mar 2026 10:23:45 +0100
            MIME-Version: 1.0
            User-Agent: Mozilla Thunderbird
            To: Bob Example <bob@example.net>
            From: Alice Liddell <alice@alice-tb.example>
            Subject: Photos and the report
            Content-Type: multipart/mixed; boundary="{boundary}"

            This is a multi-part message in MIME format.
            --{boundary}
            Content-Type: text/plain; charset=UTF-8; format=flowed
            Content-Transfer-Encoding: 7bit

            {Paragraph}

            """);
        (string Name, string Type, double Share)[] attachments =
        [
            ("report.pdf", "application/pdf", 0.6),
            ("IMG_2041.jpg", "image/jpeg", 0.3),
            ("figures.ods", "application/vnd.oasis.opendocument.spreadsheet", 0.1),
        ];
        // 57 raw bytes make one base64 line of 76 characters and its line end: 78 bytes.
        const int encoded = 10 * 1024 * 1024 - 4096;
        foreach (var (name, type, share) in attachments)
        {
            message.Append($"""
                --{boundary}
                Content-Type: {type}; name="{name}"
                Content-Disposition: attachment; filename="{name}"
                Content-Transfer-Encoding: base64


                """);
            var raw = new byte[(int)(encoded * share / 78) * 57];
            random.NextBytes(raw);
            for (var at = 0; at < raw.Length; at += 57)
                message.Append(Convert.ToBase64String(raw, at, 57)).Append('\n');
            message.Append('\n');
        }
        message.Append($"--{boundary}--\n");
        return Crlf(message.ToString());
    }

    private static byte[] Crlf(string text) => Encoding.UTF8.GetBytes(text.ReplaceLineEndings("\r\n"));
}
