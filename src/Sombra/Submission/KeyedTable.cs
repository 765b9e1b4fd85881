namespace Sombra.Submission;

/// <summary>
/// State per <see cref="ClientKeys.Hash"/>. An entry made under the previous key moves to the
/// current key the first time it is looked up, so a key rotation loses nothing; entries made
/// under older keys can no longer be found and go with the next sweep, as do emptied ones.
/// Not thread-safe: the owner locks.
/// </summary>
internal sealed class KeyedTable<T>(Func<T> create) where T : class
{
    private readonly Dictionary<string, T> _entries = new(StringComparer.Ordinal);

    public int Count => _entries.Count;

    public T? Find(ClientKeys.Hash key)
    {
        if (_entries.TryGetValue(key.Current, out var entry))
            return entry;
        if (key.Previous is null || !_entries.Remove(key.Previous, out entry))
            return null;
        _entries[key.Current] = entry;
        return entry;
    }

    public T Get(ClientKeys.Hash key)
    {
        var entry = Find(key);
        if (entry is null)
            _entries[key.Current] = entry = create();
        return entry;
    }

    /// <summary>Drops the entries that hold nothing any more.</summary>
    public void Sweep(Func<T, bool> empty)
    {
        foreach (var (key, entry) in _entries)
            if (empty(entry))
                _entries.Remove(key);
    }
}
