using System.Net;
using System.Net.Sockets;
using DnsClient;
using DnsClient.Protocol;
using Sombra.Hosting;

namespace Sombra.Delivery;

/// <summary>Where mail for a domain goes (RFC 5321 section 5.1), looked up with DnsClient.</summary>
public sealed class MxResolver
{
    private readonly LookupClient _dns;

    public MxResolver(IReadOnlyList<string> servers)
    {
        var options = servers.Count == 0
            ? new LookupClientOptions()
            : new LookupClientOptions(servers.Select(ParseServer).ToArray());
        options.UseCache = true;
        options.Timeout = TimeSpan.FromSeconds(5);
        options.Retries = 2;
        options.ThrowDnsErrors = false;
        options.ContinueOnDnsError = false;
        options.ContinueOnEmptyResponse = false;
        _dns = new LookupClient(options);
    }

    private static IPEndPoint ParseServer(string server) =>
        ConfigLoader.TryParseEndpoint(server, out var endpoint) ? endpoint : new IPEndPoint(IPAddress.Parse(server), 53);

    public sealed record Host(string Name, IReadOnlyList<IPAddress> Addresses);

    /// <summary>Hosts in preference order, or a failure (Detail is an SMTP-style reply text).</summary>
    public sealed record Result(IReadOnlyList<Host> Hosts, Outcome Failure, string? Detail)
    {
        public static Result Fail(Outcome outcome, string detail) => new([], outcome, detail);
    }

    public async Task<Result> ResolveAsync(string domain, CancellationToken cancellationToken)
    {
        if (domain.StartsWith('[') && domain.EndsWith(']'))
        {
            var literal = domain[1..^1];
            if (literal.StartsWith("IPv6:", StringComparison.OrdinalIgnoreCase))
                literal = literal[5..];
            return IPAddress.TryParse(literal, out var ip)
                ? new Result([new Host(ip.ToString(), [ip])], Outcome.Delivered, null)
                : Result.Fail(Outcome.Permanent, "553 5.1.2 malformed address literal");
        }

        IDnsQueryResponse mx;
        try
        {
            mx = await _dns.QueryAsync(domain, QueryType.MX, cancellationToken: cancellationToken);
        }
        catch (DnsResponseException)
        {
            return Result.Fail(Outcome.Temporary, "451 4.4.3 MX lookup timed out or failed");
        }
        if (mx.Header.ResponseCode == DnsHeaderResponseCode.NotExistentDomain)
            return Result.Fail(Outcome.Permanent, "550 5.1.2 the recipient domain does not exist");
        if (mx.HasError)
            return Result.Fail(Outcome.Temporary, $"451 4.4.3 MX lookup failed ({mx.Header.ResponseCode})");

        var records = mx.Answers.MxRecords().ToList();
        if (records.Count == 0)
        {
            // No MX: the domain itself is the implicit MX (RFC 5321 section 5.1).
            var (addresses, error) = await AddressesAsync(domain, cancellationToken);
            if (error is not null)
                return Result.Fail(Outcome.Temporary, error);
            return addresses.Count == 0
                ? Result.Fail(Outcome.Permanent, "550 5.1.2 the recipient domain has no MX and no address")
                : new Result([new Host(domain, addresses)], Outcome.Delivered, null);
        }

        // RFC 7505: a single MX "." means the domain accepts no mail at all.
        if (records.Any(r => IsNullMx(r)))
            return Result.Fail(Outcome.Permanent, "556 5.1.10 the recipient domain accepts no mail (null MX)");

        var hosts = new List<Host>();
        string? lastError = null;
        // Equal preferences in random order, so that load spreads as RFC 5321 section 5.1 asks.
        foreach (var record in records.OrderBy(r => r.Preference).ThenBy(_ => Random.Shared.Next()))
        {
            var name = record.Exchange.Value.TrimEnd('.');
            var (addresses, error) = await AddressesAsync(name, cancellationToken);
            lastError = error ?? lastError;
            if (addresses.Count > 0)
                hosts.Add(new Host(name, addresses));
        }
        return hosts.Count > 0
            ? new Result(hosts, Outcome.Delivered, null)
            : Result.Fail(Outcome.Temporary, lastError ?? "451 4.4.4 no MX host of the domain has an address");
    }

    private static bool IsNullMx(MxRecord r) => r.Exchange.Value is "." or "";

    private async Task<(List<IPAddress> Addresses, string? Error)> AddressesAsync(string name, CancellationToken ct)
    {
        var result = new List<IPAddress>();
        string? error = null;
        foreach (var type in new[] { QueryType.A, QueryType.AAAA })
        {
            try
            {
                var response = await _dns.QueryAsync(name, type, cancellationToken: ct);
                if (response.HasError && response.Header.ResponseCode != DnsHeaderResponseCode.NotExistentDomain)
                    error = $"451 4.4.3 address lookup failed ({response.Header.ResponseCode})";
                result.AddRange(response.Answers.ARecords().Select(a => a.Address));
                result.AddRange(response.Answers.AaaaRecords().Select(a => a.Address));
            }
            catch (DnsResponseException)
            {
                error = "451 4.4.3 address lookup timed out or failed";
            }
        }
        return (result.Where(a => a.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6)
            .Distinct().ToList(), result.Count > 0 ? null : error);
    }
}
