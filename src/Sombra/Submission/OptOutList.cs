using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
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
    private readonly string _path;
    private readonly byte[] _key;
    private readonly Lock _lock = new();
    private HashSet<string> _hashes = [];
    private DateTime _loadedStamp = DateTime.MinValue;

    public OptOutList(string dataDirectory)
    {
        _path = Path.Combine(dataDirectory, "optout.json");
        _key = SecretFile.LoadOrCreate(dataDirectory, "optout.key");
    }

    /// <summary>Addresses compare without case: mail systems treat them so in practice.</summary>
    public string Hash(string address) =>
        Convert.ToBase64String(HMACSHA256.HashData(_key, Encoding.UTF8.GetBytes(address.Trim().ToLowerInvariant())));

    public bool Contains(string address)
    {
        var hash = Hash(address);
        Refresh();
        lock (_lock) return _hashes.Contains(hash);
    }

    public IReadOnlyCollection<string> Hashes()
    {
        Refresh();
        lock (_lock) return _hashes.Order().ToArray();
    }

    public bool Add(string address) => Change(set => set.Add(Hash(address)));

    public bool Remove(string address) => Change(set => set.Remove(Hash(address)));

    private bool Change(Func<HashSet<string>, bool> change)
    {
        Refresh();
        lock (_lock)
        {
            var next = new HashSet<string>(_hashes);
            if (!change(next))
                return false;
            Save(next);
            _hashes = next;
            return true;
        }
    }

    private void Refresh()
    {
        var stamp = File.Exists(_path) ? File.GetLastWriteTimeUtc(_path) : DateTime.MinValue;
        lock (_lock)
        {
            if (stamp == _loadedStamp)
                return;
            _hashes = stamp == DateTime.MinValue
                ? []
                : JsonSerializer.Deserialize<HashSet<string>>(File.ReadAllText(_path)) ?? [];
            _loadedStamp = stamp;
        }
    }

    private void Save(HashSet<string> hashes)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(_path)!);
        var temp = _path + ".tmp";
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            JsonSerializer.Serialize(stream, hashes.Order().ToArray());
            stream.Flush(flushToDisk: true);
        }
        File.Move(temp, _path, overwrite: true);
        _loadedStamp = File.GetLastWriteTimeUtc(_path);
    }
}
