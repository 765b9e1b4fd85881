using System.Security.Cryptography;

namespace Sombra.Anonymity;

/// <summary>
/// Random identifiers for Message-ID, boundaries and trace ids. They come from the CSPRNG only:
/// no clock, counter or process id, so two messages share nothing a recipient could correlate.
/// </summary>
internal static class RandomToken
{
    private const string Base32 = "abcdefghijklmnopqrstuvwxyz234567";
    private const string Alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    /// <summary>Lowercase base32 text carrying at least <paramref name="bits"/> random bits.</summary>
    public static string Base32Text(int bits) =>
        RandomNumberGenerator.GetString(Base32, (bits + 4) / 5);

    /// <summary>Letters and digits, as queue ids of mainstream MTAs look.</summary>
    public static string AlnumText(int length) => RandomNumberGenerator.GetString(Alnum, length);

    /// <summary>
    /// A multipart boundary. "=_" can occur neither in quoted-printable nor in base64 text, so
    /// it cannot collide with encoded content; 140 random bits make 8-bit text safe too.
    /// </summary>
    public static string Boundary() => "=_" + Base32Text(140);

    /// <summary>RFC 5322 section 3.6.4 msg-id from 130 random bits.</summary>
    public static string MessageId(string hostName) => $"<{Base32Text(130)}@{hostName}>";
}
