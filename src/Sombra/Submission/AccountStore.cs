using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Sombra.Hosting;

namespace Sombra.Submission;

/// <summary>
/// The accounts that may authenticate, kept in <c>DataDirectory/accounts.json</c>. Passwords are
/// stored only as PBKDF2-SHA256 hashes (600,000 iterations, the OWASP 2023 floor). The file is
/// re-read when it changes, so <c>sombra user add</c> takes effect on a running relay.
/// </summary>
public sealed class AccountStore
{
    public const int Iterations = 600_000;
    private const int SaltBytes = 16;
    private const int HashBytes = 32;

    private readonly WatchedJsonFile<Dictionary<string, Account>> _file;

    // A verified (name, password) pair is remembered by an HMAC under a key that lives only in
    // this process, so a client that authenticates per message does not pay the KDF each time.
    private readonly byte[] _cacheKey = RandomNumberGenerator.GetBytes(32);
    private readonly ConcurrentDictionary<string, string> _verified = new();

    public AccountStore(string dataDirectory) =>
        _file = new(Path.Combine(dataDirectory, "accounts.json"), () => new(StringComparer.Ordinal));

    public sealed record Account(string Hash, string? Notify);

    public static bool IsValidName(string name) =>
        name.Length is > 0 and <= 64
        && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' or '@' or '+');

    public IReadOnlyDictionary<string, Account> All() => _file.Read();

    public Account? Find(string name) => _file.Read().GetValueOrDefault(name);

    /// <summary>Checks a password in constant time; unknown names cost the same as known ones.</summary>
    public bool Verify(string name, string password)
    {
        var account = Find(name);
        var tag = Convert.ToBase64String(HMACSHA256.HashData(_cacheKey, Encoding.UTF8.GetBytes(name + "\0" + password)));
        if (account is not null && _verified.TryGetValue(name, out var cached) && cached == account.Hash + tag)
            return true;

        var ok = VerifyHash(account?.Hash ?? DummyHash, password) && account is not null;
        if (ok)
            _verified[name] = account!.Hash + tag;
        return ok;
    }

    public void Add(string name, string password, string? notify)
    {
        var account = new Account(HashPassword(password), notify);
        _file.Update(accounts => new Dictionary<string, Account>(accounts) { [name] = account });
    }

    public bool Remove(string name) =>
        _file.Update(accounts =>
        {
            if (!accounts.ContainsKey(name))
                return null;
            var next = new Dictionary<string, Account>(accounts);
            next.Remove(name);
            return next;
        });

    public static string HashPassword(string password)
    {
        var salt = RandomNumberGenerator.GetBytes(SaltBytes);
        var hash = Rfc2898DeriveBytes.Pbkdf2(password, salt, Iterations, HashAlgorithmName.SHA256, HashBytes);
        return $"pbkdf2-sha256${Iterations}${Convert.ToBase64String(salt)}${Convert.ToBase64String(hash)}";
    }

    public static bool VerifyHash(string stored, string password)
    {
        var parts = stored.Split('$');
        if (parts.Length != 4 || parts[0] != "pbkdf2-sha256" || !int.TryParse(parts[1], out var iterations))
            return false;
        var salt = Convert.FromBase64String(parts[2]);
        var expected = Convert.FromBase64String(parts[3]);
        var actual = Rfc2898DeriveBytes.Pbkdf2(password, salt, iterations, HashAlgorithmName.SHA256, expected.Length);
        return CryptographicOperations.FixedTimeEquals(actual, expected);
    }

    private static readonly string DummyHash = HashPassword(Convert.ToBase64String(RandomNumberGenerator.GetBytes(16)));
}
