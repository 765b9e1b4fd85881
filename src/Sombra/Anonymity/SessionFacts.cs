using System.Net;

namespace Sombra.Anonymity;

/// <summary>
/// What the submission session knows about the client. It lives in memory only and is handed
/// to the anonymizer, which decides what (if anything) of it may shape the outgoing message.
/// </summary>
public sealed record SessionFacts(
    IPAddress ClientAddress,
    string HeloName,
    string? Account,
    bool Tls,
    bool Esmtp,
    IReadOnlyList<string> Recipients)
{
    /// <summary>The RFC 3848 "with" keyword for this session: ESMTP, ESMTPS, ESMTPA or ESMTPSA.</summary>
    public string Protocol => !Esmtp ? "SMTP" : (Tls, Account is not null) switch
    {
        (true, true) => "ESMTPSA",
        (true, false) => "ESMTPS",
        (false, true) => "ESMTPA",
        _ => "ESMTP",
    };
}
