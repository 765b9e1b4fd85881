using System.Security.Cryptography;

namespace Sombra.Hosting;

/// <summary>
/// Keys that must outlive a restart (the opt-out list's, the per-sender decoy key) are made once
/// into DataDirectory/keys, readable by the relay's user only, and flushed to disk before use so
/// that a crash cannot leave a half-written key that would silently change every hash.
/// </summary>
public static class SecretFile
{
    public static byte[] LoadOrCreate(string dataDirectory, string name, int bytes = 32)
    {
        var directory = Path.Combine(dataDirectory, "keys");
        var path = Path.Combine(directory, name);
        if (File.Exists(path))
        {
            var existing = File.ReadAllBytes(path);
            if (existing.Length == bytes)
                return existing;
            throw new InvalidDataException($"The key file {path} is damaged (it should be {bytes} bytes long).");
        }

        Directory.CreateDirectory(directory);
        var key = RandomNumberGenerator.GetBytes(bytes);
        var temp = path + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var stream = new FileStream(temp, options))
        {
            stream.Write(key);
            stream.Flush(flushToDisk: true);
        }
        // Two processes may race to create it; the first rename wins and both use its key.
        try
        {
            File.Move(temp, path, overwrite: false);
        }
        catch (IOException) when (File.Exists(path))
        {
            File.Delete(temp);
            return File.ReadAllBytes(path);
        }
        return key;
    }
}
