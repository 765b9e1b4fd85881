using System.Text.Json;

namespace Sombra.Hosting;

/// <summary>
/// A small JSON file that one process writes (a CLI command) and another reads (the running
/// relay): reads notice a newer file and load it again; writes go to a temporary file, are
/// flushed to disk and renamed over the old one, so a crash leaves the old content or the new,
/// never half of either. The file is readable by its owner only.
/// </summary>
public sealed class WatchedJsonFile<T>(string path, Func<T> empty) where T : class
{
    private readonly Lock _lock = new();
    private T _value = empty();
    private DateTime _loadedStamp = DateTime.MinValue;

    public string Path => path;

    public T Read()
    {
        var stamp = File.Exists(path) ? File.GetLastWriteTimeUtc(path) : DateTime.MinValue;
        lock (_lock)
        {
            if (stamp != _loadedStamp)
            {
                _value = stamp == DateTime.MinValue
                    ? empty()
                    : JsonSerializer.Deserialize<T>(File.ReadAllText(path)) ?? empty();
                _loadedStamp = stamp;
            }
            return _value;
        }
    }

    /// <summary>Applies <paramref name="change"/> to a fresh copy and saves it when it returns true.</summary>
    public bool Update(Func<T, T?> change)
    {
        lock (_lock)
        {
            var next = change(Read());
            if (next is null)
                return false;
            Write(next);
            _value = next;
            return true;
        }
    }

    private void Write(T value)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        var temp = path + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var stream = new FileStream(temp, options))
        {
            JsonSerializer.Serialize(stream, value, new JsonSerializerOptions { WriteIndented = true });
            stream.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
        _loadedStamp = File.GetLastWriteTimeUtc(path);
    }
}
