using System.Security.Cryptography;
using System.Text;
using Sombra.Hosting;

namespace Sombra.Submission;

/// <summary>
/// Recipients who asked to receive nothing through this relay. Only keyed hashes of their
/// addresses are kept (DataDirectory/optout.json), so the file is not a directory of who opted
/// out: it can answer "is this address on it?" but never "who is on it?". The file is re-read
/// when it changes, so <c>sombra optout add</c> takes effect on a running relay.
/// </summary>
public sealed class OptOutList
{
    private readonly WatchedJsonFile<HashSet<string>> _file;
    private readonly byte[] _key;

    public OptOutList(string dataDirectory)
    {
        _file = new(Path.Combine(dataDirectory, "optout.json"), () => []);
        _key = SecretFile.LoadOrCreate(Path.Combine(dataDirectory, "optout.key"));
    }

    /// <summary>Addresses compare without case: mail systems treat them so in practice.</summary>
    public string Hash(string address) =>
        Convert.ToBase64String(HMACSHA256.HashData(_key, Encoding.UTF8.GetBytes(address.Trim().ToLowerInvariant())));

    public bool Contains(string address) => _file.Read().Contains(Hash(address));

    public IReadOnlyCollection<string> Hashes() => _file.Read().Order().ToArray();

    public bool Add(string address)
    {
        var hash = Hash(address);
        return _file.Update(set => set.Contains(hash) ? null : [.. set, hash]);
    }

    public bool Remove(string address)
    {
        var hash = Hash(address);
        return _file.Update(set => set.Contains(hash) ? set.Where(h => h != hash).ToHashSet() : null);
    }
}
