using System.Net;

namespace Sombra.Submission;

/// <summary>
/// Who may relay: an authenticated client, or one whose address is in TrustedNetworks. Nobody
/// else, ever: an anonymizing open relay would be abused and blocklisted within days.
/// </summary>
public sealed class RelayPolicy(IEnumerable<string> trustedNetworks)
{
    private readonly IPNetwork[] _trusted = trustedNetworks.Select(n => IPNetwork.Parse(n)).ToArray();

    public bool IsTrusted(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
            address = address.MapToIPv4();
        return _trusted.Any(n => n.Contains(address));
    }
}
