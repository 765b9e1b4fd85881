using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Sombra.Anonymity;

/// <summary>
/// Chooses the address a mask-mode trace names (issue #3): uniformly from a network of
/// <c>Anonymity:DecoyNetworks</c>, never the client's own address even when it lies in the pool.
/// Per-sender selection derives the address from HMAC-SHA256(key, account), so one account
/// looks like one ordinary sender while the key keeps the mapping unguessable.
/// </summary>
internal sealed class DecoyPicker
{
    private static readonly IPNetwork[] Fallback =
        [IPNetwork.Parse("10.0.0.0/8"), IPNetwork.Parse("172.16.0.0/12"), IPNetwork.Parse("192.168.0.0/16")];

    private readonly IPNetwork[] _networks;
    private readonly byte[]? _senderKey;

    /// <param name="networks">CIDR networks; validated by the configuration.</param>
    /// <param name="senderKey">The per-sender key, or null for per-message selection.</param>
    public DecoyPicker(IEnumerable<string> networks, byte[]? senderKey)
    {
        _networks = networks.Select(IPNetwork.Parse).ToArray();
        if (_networks.Length == 0)
            _networks = Fallback;
        _senderKey = senderKey;
    }

    public IPAddress Pick(IPAddress client, string? account)
    {
        var real = Normalize(client);
        for (var attempt = 0; attempt < 64; attempt++)
        {
            var seed = _senderKey is not null && account is not null
                ? HMACSHA256.HashData(_senderKey, Encoding.UTF8.GetBytes($"{attempt}\0{account}"))
                : RandomNumberGenerator.GetBytes(32);
            var candidate = FromSeed(_networks, seed);
            if (candidate is not null && !candidate.Equals(real))
                return candidate;
        }

        // Only a pool made of the client's own address (or unusable /31s) gets here.
        for (var attempt = 0; ; attempt++)
        {
            var candidate = FromSeed(Fallback, RandomNumberGenerator.GetBytes(32));
            if (candidate is not null && !candidate.Equals(real))
                return candidate;
        }
    }

    private static IPAddress Normalize(IPAddress a) => a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a;

    /// <summary>Maps 32 seed bytes to a host address of one network, or null if none fits.</summary>
    private static IPAddress? FromSeed(IPNetwork[] networks, byte[] seed)
    {
        var network = networks[(int)(BitConverter.ToUInt32(seed, 0) % (uint)networks.Length)];
        var v4 = network.BaseAddress.AddressFamily == AddressFamily.InterNetwork;
        var width = v4 ? 32 : 128;
        var hostBits = width - network.PrefixLength;

        var baseBytes = network.BaseAddress.GetAddressBytes();
        var value = new UInt128(0, 0);
        foreach (var b in baseBytes)
            value = (value << 8) | b;
        var random = new UInt128(BitConverter.ToUInt64(seed, 8), BitConverter.ToUInt64(seed, 16));
        var mask = hostBits == 128 ? UInt128.MaxValue : (UInt128.One << hostBits) - 1;
        var host = random & mask;

        // The network and broadcast addresses of an IPv4 subnet, and the subnet-router anycast
        // address of an IPv6 one, are never a client's.
        if (hostBits >= 2 && (host == 0 || (v4 && host == mask)))
            return null;
        value = (value & ~mask) | host;

        var bytes = new byte[width / 8];
        for (var i = bytes.Length - 1; i >= 0; i--, value >>= 8)
            bytes[i] = (byte)(value & 0xFF);
        return new IPAddress(bytes);
    }

    /// <summary>The "from" clause: address-literal HELO and no reverse name, as Postfix writes it.</summary>
    public static string FromClause(IPAddress decoy)
    {
        var literal = decoy.AddressFamily == AddressFamily.InterNetworkV6
            ? "IPv6:" + decoy
            : decoy.ToString();
        return $"from [{literal}] (unknown [{literal}])";
    }
}
