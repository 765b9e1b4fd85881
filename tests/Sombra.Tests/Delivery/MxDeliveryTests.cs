using System.Net;
using Sombra.Queue;
using Sombra.Tests.Support;
using Xunit;

namespace Sombra.Tests.Delivery;

/// <summary>Direct delivery against a real DNS server (TestDns) and real next hops on 127.0.0.x.</summary>
public sealed class MxDeliveryTests : IDisposable
{
    private const string Body = "Subject: mx\r\n\r\nhello\r\n";
    private readonly TestDns _dns = new();
    private readonly List<AiosmtpdSink> _sinks = [];
    private readonly int _port;

    public MxDeliveryTests()
    {
        // One port number for every next hop, as Delivery:Port is one setting; each listens on its own address.
        var first = Sink("127.0.0.2", 0);
        _port = first.Port;
    }

    private AiosmtpdSink Sink(string host, int port)
    {
        var sink = new AiosmtpdSink("--host", host, "--port", port.ToString());
        _sinks.Add(sink);
        return sink;
    }

    private Relay Relay() => new(o =>
    {
        o.Delivery.DnsServers = [_dns.Endpoint];
        o.Delivery.Port = _port;
        o.Delivery.Tls = "opportunistic";
    }, fakeClock: true);

    [Fact]
    public async Task Mail_goes_to_the_most_preferred_MX()
    {
        var primary = _sinks[0];
        var backup = Sink("127.0.0.3", _port);
        _dns.Mx["pref.test"] = [(20, "backup.pref.test"), (10, "primary.pref.test")];
        _dns.Addresses["primary.pref.test"] = [IPAddress.Parse("127.0.0.2")];
        _dns.Addresses["backup.pref.test"] = [IPAddress.Parse("127.0.0.3")];
        await using var relay = Relay();
        await relay.StartAsync();

        var id = await relay.SubmitAsync(Body, ["a@pref.test"]);
        Assert.Single(await primary.WaitForAsync(1));
        await relay.WaitAsync(id, m => m is null);
        Assert.Empty(backup.Messages());
    }

    [Fact]
    public async Task An_unreachable_MX_falls_back_to_the_next_one()
    {
        var backup = Sink("127.0.0.3", _port);
        _dns.Mx["down.test"] = [(10, "dead.down.test"), (20, "backup.down.test")];
        _dns.Addresses["dead.down.test"] = [IPAddress.Parse("127.0.0.4")]; // nothing listens there
        _dns.Addresses["backup.down.test"] = [IPAddress.Parse("127.0.0.3")];
        await using var relay = Relay();
        await relay.StartAsync();

        await relay.SubmitAsync(Body, ["a@down.test"]);
        Assert.Equal(["a@down.test"], Assert.Single(await backup.WaitForAsync(1)).Recipients);
    }

    [Fact]
    public async Task Without_MX_the_domain_address_is_used()
    {
        _dns.Addresses["plain.test"] = [IPAddress.Parse("127.0.0.2")];
        await using var relay = Relay();
        await relay.StartAsync();

        await relay.SubmitAsync(Body, ["a@plain.test"]);
        Assert.Single(await _sinks[0].WaitForAsync(1));
    }

    [Fact]
    public async Task Recipients_are_delivered_per_domain_with_their_own_outcome()
    {
        _dns.Addresses["plain.test"] = [IPAddress.Parse("127.0.0.2")];
        _dns.Mx["nullmx.test"] = [(0, ".")];
        _dns.Failing.Add("broken.test");
        await using var relay = Relay();
        await relay.StartAsync();

        var id = await relay.SubmitAsync(Body,
            ["a@plain.test", "b@nullmx.test", "c@broken.test", "d@nxdomain.test"]);
        var message = await relay.WaitAsync(id, m => m!.Recipients.All(r => r.Attempts == 1));

        var r = message!.Recipients.ToDictionary(x => x.Address);
        Assert.Equal(RecipientState.Delivered, r["a@plain.test"].State);
        Assert.Equal(RecipientState.Failed, r["b@nullmx.test"].State); // RFC 7505
        Assert.Contains("5.1.10", r["b@nullmx.test"].LastError);
        Assert.Equal(RecipientState.Pending, r["c@broken.test"].State); // SERVFAIL is temporary
        Assert.StartsWith("451", r["c@broken.test"].LastError);
        Assert.Equal(RecipientState.Failed, r["d@nxdomain.test"].State);
        Assert.Equal(["a@plain.test"], Assert.Single(_sinks[0].Messages()).Recipients);
    }

    public void Dispose()
    {
        foreach (var sink in _sinks)
            sink.Dispose();
        _dns.Dispose();
    }
}
