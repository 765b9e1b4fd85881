using System.Net;
using System.Net.Sockets;
using System.Numerics;
using System.Security.Cryptography;
using System.Text;

namespace Sombra.Anonymity;

/// <summary>
/// Chooses the address a mask-mode trace names (issue #3): uniformly from the host addresses of
/// <c>Anonymity:DecoyNetworks</c> other than the client's own. Per-sender selection derives the
/// choice from HMAC-SHA256(key, account), so one account looks like one ordinary sender while the
/// key keeps the mapping unguessable.
/// </summary>
internal sealed class DecoyPicker
{
    /// <summary>Disjoint networks, so that every address of the pool has exactly one index.</summary>
    private readonly Block[] _blocks;
    private readonly BigInteger _size;
    private readonly byte[]? _senderKey;

    /// <param name="First">The host offset of the first usable address.</param>
    private readonly record struct Block(IPNetwork Network, BigInteger First, BigInteger Count);

    /// <param name="networks">CIDR networks; validated by the configuration.</param>
    /// <param name="senderKey">The per-sender key, or null for per-message selection.</param>
    public DecoyPicker(IEnumerable<string> networks, byte[]? senderKey)
    {
        _blocks = Blocks(networks);
        _size = _blocks.Aggregate(BigInteger.Zero, (sum, b) => sum + b.Count);
        _senderKey = senderKey;
    }

    /// <summary>
    /// How many distinct addresses the pool offers. The configuration requires two, so that one
    /// is left when a client connects from the other.
    /// </summary>
    public static BigInteger PoolSize(IEnumerable<string> networks) =>
        Blocks(networks).Aggregate(BigInteger.Zero, (sum, b) => sum + b.Count);

    /// <summary>
    /// A uniform choice over the pool without the client: the pool's own choice stands unless it
    /// is the client, and then a second draw over the others decides. An account thus keeps its
    /// decoy for every connection except one made from that decoy itself.
    /// </summary>
    public IPAddress Pick(IPAddress client, string? account)
    {
        var excluded = ClientIndices(client);
        var available = _size - excluded.Count;
        if (available <= 0)
            throw new InvalidOperationException("The decoy pool holds no address but the client's own.");

        var index = Draw(account, 0, _size);
        if (excluded.Contains(index))
        {
            index = Draw(account, 1, available);
            foreach (var skip in excluded)
                if (index >= skip)
                    index++;
        }
        return AddressAt(index);
    }

    /// <summary>
    /// 256 bits reduced modulo a pool of at most a few times 2^128 addresses: the bias is below
    /// 2^-120, so no retry loop is needed and per-sender choices stay a pure function of the key.
    /// </summary>
    private BigInteger Draw(string? account, int round, BigInteger size)
    {
        var seed = _senderKey is not null && account is not null
            ? HMACSHA256.HashData(_senderKey, Encoding.UTF8.GetBytes($"{round}\0{account}"))
            : RandomNumberGenerator.GetBytes(32);
        return new BigInteger(seed, isUnsigned: true, isBigEndian: true) % size;
    }

    /// <summary>
    /// The client's indices in the pool, ascending: an IPv4 client may also appear in its
    /// IPv4-mapped IPv6 form when an IPv6 network covers ::ffff:0:0/96.
    /// </summary>
    internal List<BigInteger> ClientIndices(IPAddress client)
    {
        var real = Normalize(client);
        var forms = real.AddressFamily == AddressFamily.InterNetwork
            ? new[] { real, real.MapToIPv6() }
            : new[] { real };
        var indices = new List<BigInteger>();
        foreach (var form in forms)
        {
            var start = BigInteger.Zero;
            foreach (var block in _blocks)
            {
                var offset = Offset(block.Network, form) - block.First;
                if (offset >= 0 && offset < block.Count)
                    indices.Add(start + offset);
                start += block.Count;
            }
        }
        indices.Sort();
        return indices;
    }

    internal IPAddress AddressAt(BigInteger index)
    {
        foreach (var block in _blocks)
        {
            if (index < block.Count)
            {
                var value = Value(block.Network.BaseAddress) + block.First + index;
                var bytes = new byte[Width(block.Network) / 8];
                var digits = value.ToByteArray(isUnsigned: true, isBigEndian: true);
                digits.CopyTo(bytes, bytes.Length - digits.Length);
                return new IPAddress(bytes);
            }
            index -= block.Count;
        }
        throw new ArgumentOutOfRangeException(nameof(index));
    }

    private static Block[] Blocks(IEnumerable<string> networks)
    {
        var parsed = networks.Select(IPNetwork.Parse).Select(Normalize).ToList();
        if (parsed.Count == 0)
            parsed = Hosting.AnonymityOptions.DefaultDecoyNetworks.Select(IPNetwork.Parse).ToList();

        // Two CIDR networks are nested or disjoint: keeping only the outermost of each nest
        // makes the pool a set, so an address listed twice is neither likelier nor left
        // behind when the client's own address is taken out.
        var outer = parsed
            .Where((n, i) => !parsed.Where((m, j) => j != i && Covers(m, n) && (!Covers(n, m) || j < i)).Any())
            .ToList();
        return outer.Select(n =>
        {
            var hostBits = Width(n) - n.PrefixLength;
            var all = BigInteger.One << hostBits;

            // The network and broadcast addresses of an IPv4 subnet, and the subnet-router
            // anycast address of an IPv6 one, are never a client's (RFC 4291 section 2.6.1).
            if (hostBits < 2)
                return new Block(n, 0, all);
            return n.BaseAddress.AddressFamily == AddressFamily.InterNetwork
                ? new Block(n, 1, all - 2)
                : new Block(n, 1, all - 1);
        }).ToArray();
    }

    private static bool Covers(IPNetwork outer, IPNetwork inner) =>
        outer.PrefixLength <= inner.PrefixLength && Offset(outer, inner.BaseAddress) >= 0;

    /// <summary>
    /// The host offset of an address in a network, or -1 outside it. IPNetwork.Contains is not
    /// used: it answers false for IPv4-mapped addresses inside an IPv6 network.
    /// </summary>
    private static BigInteger Offset(IPNetwork network, IPAddress address)
    {
        if (network.BaseAddress.AddressFamily != address.AddressFamily)
            return -1;
        var offset = Value(address) - Value(network.BaseAddress);
        return offset >= 0 && offset < BigInteger.One << (Width(network) - network.PrefixLength) ? offset : -1;
    }

    /// <summary>
    /// ::ffff:a.b.c.d/p is the IPv4 network a.b.c.d/(p-96): written in IPv6 form it would still
    /// name an IPv4 client, so it is compared and written as IPv4.
    /// </summary>
    private static IPNetwork Normalize(IPNetwork n) =>
        n.BaseAddress.IsIPv4MappedToIPv6 && n.PrefixLength >= 96
            ? new IPNetwork(n.BaseAddress.MapToIPv4(), n.PrefixLength - 96)
            : n;

    private static IPAddress Normalize(IPAddress a) => a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a;

    private static int Width(IPNetwork n) =>
        n.BaseAddress.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;

    private static BigInteger Value(IPAddress a) =>
        new(a.GetAddressBytes(), isUnsigned: true, isBigEndian: true);

    /// <summary>The "from" clause: address-literal HELO and no reverse name, as Postfix writes it.</summary>
    public static string FromClause(IPAddress decoy)
    {
        var literal = decoy.AddressFamily == AddressFamily.InterNetworkV6
            ? "IPv6:" + decoy
            : decoy.ToString();
        return $"from [{literal}] (unknown [{literal}])";
    }
}
