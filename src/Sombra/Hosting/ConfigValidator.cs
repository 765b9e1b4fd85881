using System.Net;

namespace Sombra.Hosting;

/// <summary>Checks the bound options; every problem is one line, named by its key.</summary>
public static class ConfigValidator
{
    public static List<string> Validate(SombraOptions o)
    {
        var errors = new List<string>();
        void Check(bool ok, string message)
        {
            if (!ok) errors.Add(message);
        }

        Check(IsDomain(o.HostName), $"HostName: '{o.HostName}' is not a domain name");
        Check(!string.IsNullOrWhiteSpace(o.DataDirectory), "DataDirectory: must not be empty");

        var s = o.Submission;
        for (var i = 0; i < s.Endpoints.Count; i++)
        {
            var e = s.Endpoints[i];
            Check(ConfigLoader.TryParseEndpoint(e.Address, out _),
                $"Submission:Endpoints:{i}:Address: '{e.Address}' is not an IP address and port");
            Check(e.Tls is "none" or "starttls" or "implicit",
                $"Submission:Endpoints:{i}:Tls: '{e.Tls}' is not none, starttls or implicit");
        }
        Check((s.Certificate is null) == (s.CertificateKey is null),
            "Submission:Certificate and Submission:CertificateKey: set both or neither");
        if (s.Certificate is not null)
            Check(File.Exists(s.Certificate), $"Submission:Certificate: '{s.Certificate}' does not exist");
        if (s.CertificateKey is not null)
            Check(File.Exists(s.CertificateKey),
                $"Submission:CertificateKey: '{s.CertificateKey}' does not exist");
        for (var i = 0; i < s.TrustedNetworks.Count; i++)
            Check(IPNetwork.TryParse(s.TrustedNetworks[i], out _),
                $"Submission:TrustedNetworks:{i}: '{s.TrustedNetworks[i]}' is not a CIDR network");
        Check(s.RequireAuthentication || s.TrustedNetworks.Count > 0,
            "Submission:RequireAuthentication: false leaves only TrustedNetworks to relay, and it is empty");
        Check(s.MaxMessageSize > 0, "Submission:MaxMessageSize: must be positive");
        Check(s.MaxRecipients > 0, "Submission:MaxRecipients: must be positive");
        Check(s.MaxConnections > 0, "Submission:MaxConnections: must be positive");
        Check(s.MaxConnectionsPerClient > 0, "Submission:MaxConnectionsPerClient: must be positive");
        Check(s.MaxBadCommands > 0, "Submission:MaxBadCommands: must be positive");
        Check(s.CommandTimeout > TimeSpan.Zero, "Submission:CommandTimeout: must be positive");
        Check(s.DataTimeout > TimeSpan.Zero, "Submission:DataTimeout: must be positive");
        Check(!s.Greeting.Any(char.IsControl), "Submission:Greeting: must be one line");

        var a = o.Anonymity;
        Check(a.Mode is "block" or "mask", $"Anonymity:Mode: '{a.Mode}' is not block or mask");
        Check(a.DecoySelection is "per-message" or "per-sender",
            $"Anonymity:DecoySelection: '{a.DecoySelection}' is not per-message or per-sender");
        for (var i = 0; i < a.DecoyNetworks.Count; i++)
            Check(IPNetwork.TryParse(a.DecoyNetworks[i], out _),
                $"Anonymity:DecoyNetworks:{i}: '{a.DecoyNetworks[i]}' is not a CIDR network");
        if (a.DecoyNetworks.All(n => IPNetwork.TryParse(n, out _)))
            Check(Anonymity.DecoyPicker.PoolSize(a.DecoyNetworks) >= 2,
                "Anonymity:DecoyNetworks: must hold two addresses or more, as a client's own is never chosen");
        Check(a.DatePrecision >= TimeSpan.Zero, "Anonymity:DatePrecision: must not be negative");
        Check(a.SenderAddress is null || IsMailbox(a.SenderAddress),
            $"Anonymity:SenderAddress: '{a.SenderAddress}' is not a mail address");
        for (var i = 0; i < a.KeepHeaders.Count; i++)
            Check(Anonymity.HeaderRules.IsFieldName(a.KeepHeaders[i])
                    && !Anonymity.HeaderRules.NeverKept.Contains(a.KeepHeaders[i]),
                $"Anonymity:KeepHeaders:{i}: '{a.KeepHeaders[i]}' is not a header name that may be kept");
        Check(a.MaxNestingDepth > 0 && a.MaxParts > 0,
            "Anonymity:MaxNestingDepth and Anonymity:MaxParts: must be positive");

        Check(o.Queue.Store is "sqlite", $"Queue:Store: '{o.Queue.Store}' is not sqlite");

        var d = o.Delivery;
        if (d.Smarthost is not null)
            Check(ConfigLoader.TryParseHostPort(d.Smarthost, out _, out _),
                $"Delivery:Smarthost: '{d.Smarthost}' is not host:port");
        Check(d.SmarthostTls is "none" or "starttls" or "implicit",
            $"Delivery:SmarthostTls: '{d.SmarthostTls}' is not none, starttls or implicit");
        Check((d.SmarthostUser is null) == (d.SmarthostPassword is null),
            "Delivery:SmarthostUser and Delivery:SmarthostPassword: set both or neither");
        Check(d.Tls is "opportunistic" or "required" or "none",
            $"Delivery:Tls: '{d.Tls}' is not opportunistic, required or none");
        for (var i = 0; i < d.DnsServers.Count; i++)
            Check(IPAddress.TryParse(d.DnsServers[i], out _) || ConfigLoader.TryParseEndpoint(d.DnsServers[i], out _),
                $"Delivery:DnsServers:{i}: '{d.DnsServers[i]}' is not an IP address (optionally :port)");
        Check(d.MaxConnections > 0, "Delivery:MaxConnections: must be positive");
        Check(d.MaxConnectionsPerDestination > 0, "Delivery:MaxConnectionsPerDestination: must be positive");
        Check(d.RetryDelays.All(x => x > TimeSpan.Zero), "Delivery:RetryDelays: every delay must be positive");
        Check(d.MaxQueueLifetime > TimeSpan.Zero, "Delivery:MaxQueueLifetime: must be positive");
        Check(d.Port is > 0 and < 65536, "Delivery:Port: must be a port number");

        var m = o.Mixing;
        Check(m.MinDelay >= TimeSpan.Zero && m.MaxDelay >= m.MinDelay,
            "Mixing:MinDelay and Mixing:MaxDelay: need 0 <= MinDelay <= MaxDelay");
        Check(m.PoolInterval > TimeSpan.Zero, "Mixing:PoolInterval: must be positive");
        Check(m.PoolMinSize >= 0, "Mixing:PoolMinSize: must not be negative");
        Check(m.PoolRate is > 0 and <= 1, "Mixing:PoolRate: must be in (0, 1]");
        Check(m.PoolMaxWait > TimeSpan.Zero, "Mixing:PoolMaxWait: must be positive");

        var l = o.Limits;
        Check(l.MessagesPerHour >= 0 && l.RecipientsPerHour >= 0,
            "Limits:MessagesPerHour and Limits:RecipientsPerHour: must not be negative (0 is unlimited)");

        if (o.Metrics.Endpoint is not null)
            Check(ConfigLoader.TryParseEndpoint(o.Metrics.Endpoint, out _),
                $"Metrics:Endpoint: '{o.Metrics.Endpoint}' is not an IP address and port");
        if (o.Abuse.Contact is not null)
            Check(IsMailbox(o.Abuse.Contact), $"Abuse:Contact: '{o.Abuse.Contact}' is not a mail address");

        return errors;
    }

    public static bool IsDomain(string name) =>
        name.Length is > 0 and <= 253
        && name.Split('.').All(l => l.Length is > 0 and <= 63
            && l.All(c => char.IsAsciiLetterOrDigit(c) || c == '-')
            && l[0] != '-' && l[^1] != '-');

    private static bool IsMailbox(string address)
    {
        var at = address.LastIndexOf('@');
        return at > 0 && IsDomain(address[(at + 1)..]) && !address[..at].Any(c => c <= ' ' || c == '<' || c == '>');
    }
}
