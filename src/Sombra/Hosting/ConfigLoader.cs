using System.Net;
using Microsoft.Extensions.Configuration;

namespace Sombra.Hosting;

/// <summary>
/// Builds the effective configuration: the embedded defaults (the property initializers of
/// <see cref="SombraOptions"/>), then the JSON file, then <c>SOMBRA__</c> environment variables.
/// </summary>
public static class ConfigLoader
{
    public const string EnvironmentPrefix = "SOMBRA__";

    static ConfigLoader() => Duration.RegisterConverter();

    /// <summary>Loads and binds; binding or file errors come back as messages, one per line.</summary>
    public static (SombraOptions? Options, IReadOnlyList<string> Errors) Load(string? configFile)
    {
        var builder = new ConfigurationBuilder();
        if (configFile is not null)
        {
            if (!File.Exists(configFile))
                return (null, [$"configuration file '{configFile}' does not exist"]);
            builder.AddJsonFile(Path.GetFullPath(configFile), optional: false, reloadOnChange: false);
        }
        builder.AddEnvironmentVariables(EnvironmentPrefix);

        SombraOptions options;
        try
        {
            var configuration = builder.Build();
            options = configuration.Get<SombraOptions>(o => o.ErrorOnUnknownConfiguration = true)
                ?? new SombraOptions();
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or IOException
            or InvalidDataException)
        {
            // InvalidDataException: the file is not JSON (the provider wraps the parser's error).
            return (null, [Flatten(e)]);
        }

        ApplyListDefaults(options);
        var errors = ConfigValidator.Validate(options);
        ApplyDerivedDefaults(options);
        return (errors.Count == 0 ? options : null, errors);
    }

    /// <summary>
    /// The binder appends to lists instead of replacing them, so list defaults cannot live in
    /// property initializers; an empty list after binding takes its documented default here.
    /// </summary>
    public static void ApplyListDefaults(SombraOptions o)
    {
        if (o.Submission.Endpoints.Count == 0)
            o.Submission.Endpoints.Add(new EndpointOptions());
        if (o.Anonymity.DecoyNetworks.Count == 0)
            o.Anonymity.DecoyNetworks.AddRange(AnonymityOptions.DefaultDecoyNetworks);
        if (o.Delivery.RetryDelays.Count == 0)
            o.Delivery.RetryDelays.AddRange(
                new[] { 1, 5, 15, 30, 60, 120, 240 }.Select(m => TimeSpan.FromMinutes(m)));
    }

    /// <summary>Defaults computed from other keys, applied after validation so that one bad
    /// key (HostName) is reported once and not again through the keys derived from it.</summary>
    public static void ApplyDerivedDefaults(SombraOptions o) =>
        o.Anonymity.SenderAddress ??= "anonymous@" + o.HostName;

    private static string Flatten(Exception e)
    {
        var messages = new List<string>();
        for (var x = e; x is not null; x = x.InnerException)
            messages.Add(x.Message);
        return string.Join(": ", messages.Distinct().Select(m => m.TrimEnd('.').ReplaceLineEndings(" ")));
    }

    public static TlsMode ParseTls(string value) => value.ToLowerInvariant() switch
    {
        "none" => TlsMode.None,
        "starttls" => TlsMode.StartTls,
        "implicit" => TlsMode.Implicit,
        _ => throw new FormatException($"'{value}' is not none, starttls or implicit"),
    };

    /// <summary>Parses "host:port", "[v6]:port" or "1.2.3.4:port".</summary>
    public static bool TryParseHostPort(string value, out string host, out int port, bool allowAnyPort = false)
    {
        host = "";
        port = 0;
        var colon = value.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(value.AsSpan(colon + 1), out port)
            || port > 65535 || port < (allowAnyPort ? 0 : 1))
            return false;
        host = value[..colon];
        if (host.StartsWith('[') && host.EndsWith(']'))
            host = host[1..^1];
        return host.Length > 0;
    }

    /// <summary>An IP endpoint to listen on; port 0 picks a free port (used by the tests).</summary>
    public static bool TryParseEndpoint(string value, out IPEndPoint endpoint)
    {
        endpoint = null!;
        if (!TryParseHostPort(value, out var host, out var port, allowAnyPort: true)
            || !IPAddress.TryParse(host, out var ip))
            return false;
        endpoint = new IPEndPoint(ip, port);
        return true;
    }
}
