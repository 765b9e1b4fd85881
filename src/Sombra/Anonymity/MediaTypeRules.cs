using MimeKit;

namespace Sombra.Anonymity;

/// <summary>
/// Content the relay refuses because it names the sender by its very format, and content it
/// passes without reading because it is encrypted. Content is never altered (issue #3), so a
/// part that identifies cannot be cleaned, only refused.
/// </summary>
internal static class MediaTypeRules
{
    private static readonly Dictionary<string, string> Refused = new(StringComparer.OrdinalIgnoreCase)
    {
        ["application/pgp-signature"] = "a detached OpenPGP signature names the signer's key",
        ["application/pkcs7-signature"] = "a detached S/MIME signature carries the signer's certificate",
        ["application/x-pkcs7-signature"] = "a detached S/MIME signature carries the signer's certificate",
        ["application/pgp-keys"] = "an attached OpenPGP key names its holder, usually the sender",
        ["message/disposition-notification"] = "a read receipt names the reader's host and mail client",
        ["message/global-disposition-notification"] = "a read receipt names the reader's host and mail client",
        ["message/delivery-status"] = "a delivery report names the reporting server",
        ["message/global-delivery-status"] = "a delivery report names the reporting server",
        ["message/external-body"] = "its headers and access parameters cannot be scrubbed",
        ["message/partial"] = "its headers cannot be scrubbed",
    };

    /// <summary>The refusal for a part of this type, or null when it may pass.</summary>
    public static string? Refusal(ContentType type)
    {
        var mime = type.MimeType.ToLowerInvariant();
        if (Refused.TryGetValue(mime, out var why))
            return $"{mime} parts are refused: {why}.";
        if (!IsPkcs7Mime(type))
            return null;
        return SmimeType(type) switch
        {
            "enveloped-data" or "authenveloped-data" => null,
            "signed-data" =>
                $"{mime} signed-data is refused: an S/MIME signature carries the signer's certificate.",
            "certs-only" => $"{mime} certs-only is refused: a certificate names its holder.",
            "compressed-data" => $"{mime} compressed-data is refused: the relay cannot read it to scrub it.",
            _ => $"{mime} without a known smime-type is refused: it may be signed, and a signature "
                + "carries the signer's certificate.",
        };
    }

    /// <summary>Encrypted content: it passes as the sender made it, unread.</summary>
    public static bool IsEncrypted(ContentType type) =>
        type.IsMimeType("multipart", "encrypted")
        || (IsPkcs7Mime(type) && SmimeType(type) is "enveloped-data" or "authenveloped-data");

    /// <summary>RFC 8551 section 3.2.2; enveloped-data and authEnveloped-data are encrypted.</summary>
    private static string? SmimeType(ContentType type) => type.Parameters["smime-type"]?.ToLowerInvariant();

    private static bool IsPkcs7Mime(ContentType type) =>
        type.IsMimeType("application", "pkcs7-mime") || type.IsMimeType("application", "x-pkcs7-mime");
}
