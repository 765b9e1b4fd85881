using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace Sombra.Submission;

/// <summary>
/// Per-client state (connection counts, and the abuse controls of issue 6) is keyed by a keyed
/// hash of the client's network, never by the address itself. The key lives only in memory and
/// is replaced every day, so neither a memory dump nor a log can be matched against addresses
/// from an earlier day.
/// </summary>
public sealed class ClientKeys(TimeProvider time)
{
    public static readonly TimeSpan Rotation = TimeSpan.FromDays(1);

    private readonly Lock _lock = new();
    private byte[] _key = RandomNumberGenerator.GetBytes(32);
    private DateTimeOffset _rotatedAt = time.GetUtcNow();

    public ClientKeys() : this(TimeProvider.System) { }

    /// <summary>Raised after the key changes, so that keyed state can be dropped.</summary>
    public event Action? Rotated;

    /// <summary>The key for a client: its /32 for IPv4, its /64 for IPv6 (one subscriber).</summary>
    public string For(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
            address = address.MapToIPv4();
        var bytes = address.GetAddressBytes();
        if (address.AddressFamily == AddressFamily.InterNetworkV6)
            bytes = bytes[..8];
        return Convert.ToBase64String(HMACSHA256.HashData(CurrentKey(), bytes), 0, 16);
    }

    /// <summary>The key for an account's own limits, so that the limit table names nobody.</summary>
    public string ForAccount(string account) =>
        "account:" + Convert.ToBase64String(
            HMACSHA256.HashData(CurrentKey(), System.Text.Encoding.UTF8.GetBytes(account)), 0, 16);

    private byte[] CurrentKey()
    {
        bool rotated = false;
        byte[] key;
        lock (_lock)
        {
            if (time.GetUtcNow() - _rotatedAt >= Rotation)
            {
                CryptographicOperations.ZeroMemory(_key);
                _key = RandomNumberGenerator.GetBytes(32);
                _rotatedAt = time.GetUtcNow();
                rotated = true;
            }
            key = _key;
        }
        if (rotated)
            Rotated?.Invoke();
        return key;
    }
}
