using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using Sombra.Hosting;

namespace Sombra.Submission;

/// <summary>
/// The certificate for STARTTLS and implicit TLS: the operator's PEM files, or a self-signed
/// one for HostName made on first start and kept in DataDirectory, so its fingerprint stays the
/// same and users can pin it.
/// </summary>
public static class TlsCertificate
{
    public static X509Certificate2 Load(SombraOptions options, ILogger logger)
    {
        X509Certificate2 certificate;
        if (options.Submission.Certificate is { } certPath && options.Submission.CertificateKey is { } keyPath)
            certificate = X509Certificate2.CreateFromPemFile(certPath, keyPath);
        else
        {
            var directory = Path.Combine(options.DataPath, "tls");
            var cert = Path.Combine(directory, "certificate.pem");
            var key = Path.Combine(directory, "key.pem");
            if (!File.Exists(cert) || !File.Exists(key))
                Generate(options.HostName, directory, cert, key);
            certificate = X509Certificate2.CreateFromPemFile(cert, key);
        }

        logger.LogInformation(
            "TLS certificate for {Subject}, SHA-256 fingerprint {Fingerprint}, valid until {NotAfter:yyyy-MM-dd}",
            certificate.GetNameInfo(X509NameType.DnsName, false), Fingerprint(certificate), certificate.NotAfter);
        return certificate;
    }

    /// <summary>
    /// Loads the operator's PEM pair, when one is configured, so that a file that is no
    /// certificate or a key that does not match it is a configuration error of one line (for
    /// <c>check</c> and before <c>serve</c> starts), not a stack trace at start-up.
    /// </summary>
    public static string? CheckConfiguredPair(SombraOptions options)
    {
        var submission = options.Submission;
        if (submission.Certificate is not { } certPath || submission.CertificateKey is not { } keyPath)
            return null;
        try
        {
            using var certificate = X509Certificate2.CreateFromPemFile(certPath, keyPath);
            return null;
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException or IOException
            or UnauthorizedAccessException)
        {
            return "Submission:Certificate and Submission:CertificateKey: cannot be used as a PEM "
                + $"certificate and its private key ({e.Message.TrimEnd('.').ReplaceLineEndings(" ")})";
        }
    }

    public static string Fingerprint(X509Certificate2 certificate) =>
        Convert.ToHexString(certificate.GetCertHash(HashAlgorithmName.SHA256)).ToLowerInvariant()
            .Chunk(2).Select(c => new string(c)).Aggregate((a, b) => a + ":" + b);

    private static void Generate(string hostName, string directory, string certPath, string keyPath)
    {
        Directory.CreateDirectory(directory);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={hostName}", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(hostName);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1")], false)); // id-kp-serverAuth

        // Backdated a day so that a client with a slightly slow clock accepts it at once.
        var now = DateTimeOffset.UtcNow;
        using var certificate = request.CreateSelfSigned(now.AddDays(-1), now.AddYears(10));

        WritePrivate(keyPath, key.ExportPkcs8PrivateKeyPem());
        WritePrivate(certPath, certificate.ExportCertificatePem());
    }

    private static void WritePrivate(string path, string text)
    {
        var temp = path + ".tmp";
        var fileOptions = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
            fileOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var stream = new FileStream(temp, fileOptions))
        {
            stream.Write(System.Text.Encoding.ASCII.GetBytes(text));
            stream.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
    }
}
