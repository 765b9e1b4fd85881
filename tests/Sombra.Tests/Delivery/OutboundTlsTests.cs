using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Sombra.Queue;
using Sombra.Tests.Support;

namespace Sombra.Tests.Delivery;

/// <summary>
/// Delivery:Tls for direct delivery, against aiosmtpd next hops found through a real DNS server:
/// opportunistic STARTTLS uses TLS when offered (even with a self-signed certificate, RFC 7435)
/// and falls back to plain text when the offer fails; "required" never sends in the clear.
/// </summary>
public sealed class OutboundTlsTests : IDisposable
{
    private const string Body = "Subject: tls\r\n\r\nhello\r\n";
    private readonly TestDns _dns = new();
    private readonly string _certDir = TempDirectory.Create("sink-cert");
    private AiosmtpdSink? _sink;

    public OutboundTlsTests()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=mx.tls.test", key, HashAlgorithmName.SHA256);
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        File.WriteAllText(Path.Combine(_certDir, "cert.pem"), certificate.ExportCertificatePem());
        File.WriteAllText(Path.Combine(_certDir, "key.pem"), key.ExportPkcs8PrivateKeyPem());
        _dns.Mx["tls.test"] = [(10, "mx.tls.test")];
        _dns.Addresses["mx.tls.test"] = [IPAddress.Parse("127.0.0.2")];
    }

    private AiosmtpdSink Sink(params string[] flags) =>
        _sink = new AiosmtpdSink(["--host", "127.0.0.2", .. flags]);

    private string[] Tls => ["--tls-cert", Path.Combine(_certDir, "cert.pem"), "--tls-key", Path.Combine(_certDir, "key.pem")];

    private Relay Relay(string tls) => new(o =>
    {
        o.Delivery.DnsServers = [_dns.Endpoint];
        o.Delivery.Port = _sink!.Port;
        o.Delivery.Tls = tls;
    });

    [Fact]
    public async Task Opportunistic_TLS_is_used_when_offered()
    {
        var sink = Sink(Tls);
        await using var relay = Relay("opportunistic");
        await relay.StartAsync();

        await relay.SubmitAsync(Body, ["a@tls.test"]);
        Assert.True(Assert.Single(await sink.WaitForAsync(1)).Tls);
    }

    [Fact]
    public async Task Opportunistic_TLS_falls_back_to_plain_text_when_STARTTLS_is_refused()
    {
        var sink = Sink("--refuse-starttls");
        await using var relay = Relay("opportunistic");
        await relay.StartAsync();

        var id = await relay.SubmitAsync(Body, ["a@tls.test"]);
        Assert.False(Assert.Single(await sink.WaitForAsync(1)).Tls);
        await relay.WaitAsync(id, m => m is null);
    }

    [Fact]
    public async Task Required_TLS_defers_rather_than_send_in_the_clear()
    {
        var sink = Sink();
        await using var relay = Relay("required");
        await relay.StartAsync();

        var id = await relay.SubmitAsync(Body, ["a@tls.test"]);
        var message = await relay.WaitAsync(id, m => m!.Recipients[0].Attempts == 1);
        Assert.Equal(RecipientState.Pending, message!.Recipients[0].State);
        Assert.StartsWith("451 4.7.0", message.Recipients[0].LastError);
        Assert.Empty(sink.Messages());
    }

    public void Dispose()
    {
        _sink?.Dispose();
        _dns.Dispose();
        Directory.Delete(_certDir, recursive: true);
    }
}
