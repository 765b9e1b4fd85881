using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Sombra.Submission;

/// <summary>
/// Per-client state (connection counts, and the abuse controls of issue 6) is keyed by a keyed
/// hash of the client's network, account or attempted account name, never by the value itself.
/// The key lives only in memory and is replaced every day, so neither a memory dump nor a log
/// can be matched against addresses from days before.
/// </summary>
/// <remarks>
/// A key stays usable for one period after it was replaced, so that state made under it (a
/// rate limit, an AUTH block) carries over instead of vanishing at a moment an abuser could
/// wait for. Key arrays are never changed once made: a thread may be hashing with one while
/// another rotates.
/// </remarks>
public sealed class ClientKeys(TimeProvider time)
{
    public static readonly TimeSpan Rotation = TimeSpan.FromDays(1);

    /// <summary>A value's hash under the current key and, for one period more, the previous one.</summary>
    public readonly record struct Hash(string Current, string? Previous);

    private sealed record Generation(byte[] Current, byte[]? Previous, DateTimeOffset Since);

    private readonly Lock _lock = new();
    private Generation _keys = new(RandomNumberGenerator.GetBytes(32), null, time.GetUtcNow());

    public ClientKeys() : this(TimeProvider.System) { }

    /// <summary>The current key for a client's network, for state that ends with its connection.</summary>
    public string For(IPAddress address) => Network(address).Current;

    /// <summary>A client's network: its /32 for IPv4, its /64 for IPv6 (one subscriber).</summary>
    public Hash Network(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
            address = address.MapToIPv4();
        var bytes = address.GetAddressBytes();
        if (address.AddressFamily == AddressFamily.InterNetworkV6)
            bytes = bytes[..8];
        return Make("network", bytes);
    }

    /// <summary>An account's own limits, so that the limit table names nobody.</summary>
    public Hash Account(string account) => Make("account", Encoding.UTF8.GetBytes(account));

    /// <summary>The name an AUTH attempt tried, whether or not such an account exists.</summary>
    public Hash AuthName(string name) => Make("auth-name", Encoding.UTF8.GetBytes(name));

    // The purpose goes into the hash, so that an account and an AUTH name of the same spelling
    // (or an address that happens to spell a name) never share state.
    private Hash Make(string purpose, byte[] value)
    {
        var input = new byte[purpose.Length + 1 + value.Length];
        Encoding.ASCII.GetBytes(purpose, input);
        value.CopyTo(input, purpose.Length + 1);
        var keys = Keys();
        return new(Digest(keys.Current, input), keys.Previous is null ? null : Digest(keys.Previous, input));
    }

    private static string Digest(byte[] key, byte[] input) =>
        Convert.ToBase64String(HMACSHA256.HashData(key, input), 0, 16);

    private Generation Keys()
    {
        var keys = Volatile.Read(ref _keys);
        if (time.GetUtcNow() - keys.Since < Rotation)
            return keys;
        lock (_lock)
        {
            if (time.GetUtcNow() - _keys.Since >= Rotation)
                Volatile.Write(ref _keys, new Generation(RandomNumberGenerator.GetBytes(32), _keys.Current,
                    time.GetUtcNow()));
            return _keys;
        }
    }
}
