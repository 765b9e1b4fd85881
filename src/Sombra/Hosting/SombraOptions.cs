namespace Sombra.Hosting;

/// <summary>
/// The whole configuration, bound from the embedded defaults, an optional JSON file and
/// <c>SOMBRA__</c> environment variables. Property names are the public configuration keys.
/// </summary>
public sealed class SombraOptions
{
    /// <summary>The relay's own name; never derived from the machine's host name.</summary>
    public string HostName { get; set; } = "sombra.localhost";

    public string DataDirectory { get; set; } = "./sombra-data";

    /// <summary>Console log level: Trace, Debug, Information, Warning, Error.</summary>
    public string LogLevel { get; set; } = "Information";

    public SubmissionOptions Submission { get; set; } = new();
    public AnonymityOptions Anonymity { get; set; } = new();
    public QueueOptions Queue { get; set; } = new();
    public DeliveryOptions Delivery { get; set; } = new();
    public MixingOptions Mixing { get; set; } = new();
    public LimitsOptions Limits { get; set; } = new();
    public MetricsOptions Metrics { get; set; } = new();
    public AbuseOptions Abuse { get; set; } = new();

    /// <summary>DataDirectory made absolute, so that every stage agrees on it.</summary>
    public string DataPath => Path.GetFullPath(DataDirectory);
}

public enum TlsMode { None, StartTls, Implicit }

public sealed class EndpointOptions
{
    public string Address { get; set; } = "127.0.0.1:2525";
    public string Tls { get; set; } = "starttls";
}

public sealed class SubmissionOptions
{
    /// <summary>Empty after binding means the default: one starttls endpoint on 127.0.0.1:2525.</summary>
    public List<EndpointOptions> Endpoints { get; set; } = [];
    public string? Certificate { get; set; }
    public string? CertificateKey { get; set; }
    public bool RequireAuthentication { get; set; } = true;
    public List<string> TrustedNetworks { get; set; } = [];
    public long MaxMessageSize { get; set; } = 25L * 1024 * 1024;
    public int MaxRecipients { get; set; } = 100;
    public int MaxConnections { get; set; } = 1000;
    public int MaxConnectionsPerClient { get; set; } = 20;
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromMinutes(5);
    public TimeSpan DataTimeout { get; set; } = TimeSpan.FromMinutes(10);
    /// <summary>Bytes per second a DATA block must average after its first 30 seconds.</summary>
    public int MinDataRate { get; set; } = 1024;
    public int MaxBadCommands { get; set; } = 5;
    public string Greeting { get; set; } = "ESMTP ready";
}

public sealed class AnonymityOptions
{
    public string Mode { get; set; } = "block";
    /// <summary>Empty after binding means the private ranges 10/8, 172.16/12 and 192.168/16.</summary>
    public List<string> DecoyNetworks { get; set; } = [];

    /// <summary>The private ranges: an ordinary internal hop that frames no third party.</summary>
    public static readonly IReadOnlyList<string> DefaultDecoyNetworks =
        ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];
    public string DecoySelection { get; set; } = "per-message";
    public List<string> KeepHeaders { get; set; } = [];
    public TimeSpan DatePrecision { get; set; } = TimeSpan.FromMinutes(1);
    /// <summary>Null means <c>anonymous@HostName</c>.</summary>
    public string? SenderAddress { get; set; }
    public string? SenderName { get; set; }
    public bool Disclosure { get; set; }
    public int MaxNestingDepth { get; set; } = 50;
    public int MaxParts { get; set; } = 1000;
}

public sealed class QueueOptions
{
    /// <summary>Only <c>sqlite</c> today; the store sits behind <c>IQueueStore</c>.</summary>
    public string Store { get; set; } = "sqlite";
}

public sealed class DeliveryOptions
{
    public string? Smarthost { get; set; }
    public string SmarthostTls { get; set; } = "starttls";
    public string? SmarthostUser { get; set; }
    public string? SmarthostPassword { get; set; }
    public List<string> DnsServers { get; set; } = [];
    public string Tls { get; set; } = "opportunistic";
    public int MaxConnections { get; set; } = 100;
    public int MaxConnectionsPerDestination { get; set; } = 10;
    /// <summary>Empty after binding means 1m, 5m, 15m, 30m, 1h, 2h, 4h (then every 4h).</summary>
    public List<TimeSpan> RetryDelays { get; set; } = [];
    public TimeSpan MaxQueueLifetime { get; set; } = TimeSpan.FromDays(5);
    /// <summary>When set, messages are written here as .eml files instead of being sent.</summary>
    public string? Directory { get; set; }
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(30);
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromMinutes(5);
    /// <summary>Port used for MX delivery; 25 except in tests.</summary>
    public int Port { get; set; } = 25;
}

public sealed class MixingOptions
{
    public TimeSpan MinDelay { get; set; } = TimeSpan.Zero;
    public TimeSpan MaxDelay { get; set; } = TimeSpan.Zero;
    public bool Pool { get; set; }
    public TimeSpan PoolInterval { get; set; } = TimeSpan.FromMinutes(5);
    public int PoolMinSize { get; set; } = 5;
    public double PoolRate { get; set; } = 0.65;
    /// <summary>A pooled message held this long after its mixing delay leaves in the next round.</summary>
    public TimeSpan PoolMaxWait { get; set; } = TimeSpan.FromHours(6);
}

public sealed class LimitsOptions
{
    /// <summary>0 means unlimited.</summary>
    public int MessagesPerHour { get; set; }
    public int RecipientsPerHour { get; set; }
    public int AuthFailuresBeforeDelay { get; set; } = 3;
    /// <summary>The first delay after AuthFailuresBeforeDelay failures; it doubles with each one after.</summary>
    public TimeSpan AuthFailureDelay { get; set; } = TimeSpan.FromSeconds(2);
    public int AuthFailuresBeforeBlock { get; set; } = 10;
    public TimeSpan AuthBlockDuration { get; set; } = TimeSpan.FromMinutes(15);
    /// <summary>CIDR networks of many users behind one address (Tor): no per-network limits there.</summary>
    public List<string> SharedNetworks { get; set; } = [];
}

public sealed class MetricsOptions
{
    /// <summary>host:port for the Prometheus endpoint; null is off.</summary>
    public string? Endpoint { get; set; }
}

public sealed class AbuseOptions
{
    public string? Contact { get; set; }
}
