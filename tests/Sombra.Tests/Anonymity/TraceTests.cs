using System.Net;
using System.Text.RegularExpressions;
using Sombra.Anonymity;
using Sombra.Hosting;
using Xunit;
using static Sombra.Tests.Anonymity.ScrubHarness;

namespace Sombra.Tests.Anonymity;

public sealed class TraceTests
{
    private static SessionFacts Facts(string client = "203.0.113.99", string? account = "someone",
        params string[] recipients) =>
        new(IPAddress.Parse(client), "client-helo.example", account, Tls: true, Esmtp: true,
            recipients.Length == 0 ? ["bob@example.net"] : recipients);

    private static string Trace(SombraOptions o, SessionFacts f, byte[]? key = null) =>
        Assert.Single(new Anonymizer(o, key).TraceHeaders(f));

    [Fact]
    public void Block_mode_names_only_its_own_hop()
    {
        var trace = Trace(Options(), Facts());

        Assert.Matches("^by relay.example with ESMTPSA id [0-9A-Za-z]{14} for <bob@example.net>$", trace);
    }

    [Fact]
    public void No_for_clause_with_more_than_one_recipient()
    {
        var trace = Trace(Options(), Facts(recipients: ["a@example.net", "b@example.net"]));

        Assert.Matches("^by relay.example with ESMTPSA id [0-9A-Za-z]{14}$", trace);
    }

    [Fact]
    public void The_protocol_follows_the_session()
    {
        var facts = new SessionFacts(IPAddress.Loopback, "h", null, Tls: false, Esmtp: true, ["a@b.example"]);
        Assert.Contains(" with ESMTP id ", Trace(Options(), facts));
    }

    [Fact]
    public async Task The_scrub_returns_the_trace_without_date()
    {
        var (_, result) = await Scrub(Crlf("From: a@a.example\n\nx\n"), Options("mask"));

        var trace = Assert.Single(result.TraceHeaders);
        Assert.DoesNotContain(";", trace);
        Assert.DoesNotContain("203.0.113.99", trace);
        Assert.DoesNotContain("client-helo", trace);
    }

    [Fact]
    public void Mask_mode_writes_a_postfix_shaped_trace_from_the_pool()
    {
        var options = Options("mask");
        var trace = Trace(options, Facts());

        var match = Regex.Match(trace,
            @"^from \[(?<ip>[0-9.]+)\] \(unknown \[\k<ip>\]\) by relay.example with ESMTPSA id [0-9A-Za-z]{14} for <bob@example.net>$");
        Assert.True(match.Success, trace);
        var ip = IPAddress.Parse(match.Groups["ip"].Value);
        Assert.Contains(options.Anonymity.DecoyNetworks, n => IPNetwork.Parse(n).Contains(ip));
    }

    [Fact]
    public void Mask_mode_with_ipv6_networks_writes_ipv6_literals()
    {
        var options = Options("mask", o => o.Anonymity.DecoyNetworks.Add("2001:db8:5::/48"));

        var trace = Trace(options, Facts());

        var ip = IPAddress.Parse(Regex.Match(trace, @"^from \[IPv6:([0-9a-f:]+)\] \(unknown \[IPv6:\1\]\)").Groups[1].Value);
        Assert.True(IPNetwork.Parse("2001:db8:5::/48").Contains(ip));
    }

    [Theory]
    [InlineData("per-message")]
    [InlineData("per-sender")]
    public void The_decoy_is_never_the_client_even_when_the_pool_holds_it(string selection)
    {
        // 10.9.9.0/30 has two host addresses, .1 and .2; the client is .1.
        var options = Options("mask", o =>
        {
            o.Anonymity.DecoyNetworks.Add("10.9.9.0/30");
            o.Anonymity.DecoyNetworks.Add("10.9.9.1/32");
            o.Anonymity.DecoySelection = selection;
        });
        var key = new byte[32];
        var seen = new HashSet<string>();
        for (var i = 0; i < 200; i++)
        {
            var trace = Trace(options, Facts("10.9.9.1", account: "user" + i), key);
            Assert.DoesNotContain("10.9.9.1]", trace);
            seen.Add(trace[..trace.IndexOf(')')]);
        }
        Assert.Equal(["from [10.9.9.2] (unknown [10.9.9.2]"], seen);

        // The same holds for an IPv4-mapped client address.
        var mapped = Trace(options, Facts("::ffff:10.9.9.1"), key);
        Assert.Contains("[10.9.9.2]", mapped);
    }

    private static IPAddress Decoy(SombraOptions o, SessionFacts f, byte[]? key = null) =>
        IPAddress.Parse(Regex.Match(Trace(o, f, key), @"^from \[(?:IPv6:)?([^\]]+)\]").Groups[1].Value);

    [Fact]
    public void The_choice_is_uniform_over_the_pool_without_the_client()
    {
        // 10.9.8.0/29 has the host addresses .1 to .6; the client is .3.
        var options = Options("mask", o => o.Anonymity.DecoyNetworks.Add("10.9.8.0/29"));
        var counts = new Dictionary<string, int>();
        for (var i = 0; i < 5000; i++)
        {
            var decoy = Decoy(options, Facts("10.9.8.3")).ToString();
            counts[decoy] = counts.GetValueOrDefault(decoy) + 1;
        }

        Assert.Equal(["10.9.8.1", "10.9.8.2", "10.9.8.4", "10.9.8.5", "10.9.8.6"], counts.Keys.Order());
        // Each expects 1000 with a standard deviation near 28: 700 is more than ten away.
        Assert.All(counts.Values, n => Assert.InRange(n, 700, 1300));
    }

    [Fact]
    public void An_account_keeps_its_decoy_unless_it_connects_from_it()
    {
        var options = Options("mask", o =>
        {
            o.Anonymity.DecoyNetworks.Add("10.9.7.0/28");
            o.Anonymity.DecoySelection = "per-sender";
        });
        var key = Enumerable.Range(0, 32).Select(i => (byte)(i * 3)).ToArray();
        var usual = Decoy(options, Facts("203.0.113.99", "alice"), key);

        for (var host = 1; host < 15; host++)
        {
            var client = IPAddress.Parse($"10.9.7.{host}");
            var decoy = Decoy(options, Facts(client.ToString(), "alice"), key);
            Assert.NotEqual(client, decoy);
            if (!client.Equals(usual))
                Assert.Equal(usual, decoy);
            else
                Assert.Equal(decoy, Decoy(options, Facts(client.ToString(), "alice"), key));
        }
    }

    [Fact]
    public void An_ipv4_mapped_pool_never_names_the_ipv4_client()
    {
        var options = Options("mask", o =>
        {
            o.Anonymity.DecoyNetworks.Add("::ffff:127.0.0.1/128");
            o.Anonymity.DecoyNetworks.Add("::ffff:127.0.0.2/128");
        });

        for (var i = 0; i < 50; i++)
        {
            Assert.Equal(IPAddress.Parse("127.0.0.2"), Decoy(options, Facts("127.0.0.1")));
            Assert.Equal(IPAddress.Parse("127.0.0.1"), Decoy(options, Facts("::ffff:127.0.0.2")));
        }
    }

    [Fact]
    public void An_ipv6_pool_that_covers_mapped_addresses_excludes_the_client_in_both_forms()
    {
        // ::fffe:0:0/95 holds ::ffff:0:0/96, so the client 10.9.6.1 is in the pool twice.
        var picker = new DecoyPicker(["10.9.6.0/31", "::fffe:0:0/95"], null);

        var indices = picker.ClientIndices(IPAddress.Parse("10.9.6.1"));

        Assert.Equal(
            [IPAddress.Parse("10.9.6.1"), IPAddress.Parse("::ffff:10.9.6.1")],
            indices.Select(picker.AddressAt));
        Assert.Equal(indices, picker.ClientIndices(IPAddress.Parse("::ffff:10.9.6.1")));
        var huge = Options("mask", o => o.Anonymity.DecoyNetworks.Add("::/0"));
        Assert.Equal(System.Net.Sockets.AddressFamily.InterNetworkV6, Decoy(huge, Facts()).AddressFamily);
    }

    [Theory]
    [InlineData(true, "10.9.5.7/32")]
    [InlineData(true, "10.9.5.7/32", "10.9.5.7/32")]
    [InlineData(true, "10.9.5.7/32", "::ffff:10.9.5.7/128")]
    [InlineData(false, "10.9.5.6/31")]
    [InlineData(false, "10.9.5.7/32", "2001:db8::7/128")]
    public void A_pool_of_one_address_is_a_configuration_error(bool refused, params string[] networks)
    {
        var o = new SombraOptions { HostName = "relay.example" };
        o.Anonymity.DecoyNetworks.AddRange(networks);
        ConfigLoader.ApplyListDefaults(o);

        var errors = ConfigValidator.Validate(o);

        var named = errors.Any(e => e.StartsWith("Anonymity:DecoyNetworks:", StringComparison.Ordinal));
        Assert.Equal(refused, named);
    }

    [Fact]
    public void Per_sender_selection_is_stable_per_account_and_keyed()
    {
        var options = Options("mask", o => o.Anonymity.DecoySelection = "per-sender");
        var key = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();
        string From(byte[] k, string account) =>
            Regex.Match(Trace(options, Facts(account: account), k), @"^from (\S+)").Groups[1].Value;

        var alice = From(key, "alice");
        Assert.All(Enumerable.Range(0, 20), _ => Assert.Equal(alice, From(key, "alice")));
        Assert.Equal(alice, From((byte[])key.Clone(), "alice"));

        var others = Enumerable.Range(0, 20).Select(i => From(key, "user" + i)).ToHashSet();
        Assert.True(others.Count > 15, "different accounts should mostly get different decoys");

        var otherKey = key.Select(b => (byte)(b ^ 0xFF)).ToArray();
        var underOtherKey = Enumerable.Range(0, 20).Count(i => From(otherKey, "user" + i) != From(key, "user" + i));
        Assert.True(underOtherKey > 15, "the key must change the mapping");
    }

    [Fact]
    public void Per_message_selection_varies()
    {
        var options = Options("mask");
        var decoys = Enumerable.Range(0, 20).Select(_ => Trace(options, Facts())[..30]).ToHashSet();

        Assert.True(decoys.Count > 15);
    }

    [Fact]
    public void Per_sender_without_a_key_is_a_configuration_error()
    {
        var options = Options("mask", o => o.Anonymity.DecoySelection = "per-sender");

        Assert.Throws<ArgumentException>(() => new Anonymizer(options, null));
    }
}
