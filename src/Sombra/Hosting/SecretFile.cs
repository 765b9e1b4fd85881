using System.Security.Cryptography;

namespace Sombra.Hosting;

/// <summary>
/// Keys that must outlive a restart (the opt-out list's, the per-sender decoy key) are made once
/// into DataDirectory, readable by the relay's user only, and flushed to disk before use, so that
/// a crash cannot leave a half-written key that would silently change every hash made with it.
/// </summary>
public static class SecretFile
{
    public const int KeyBytes = 32;

    /// <summary>Reads the key, or creates it: written to a temporary file, fsynced, then moved in.</summary>
    public static byte[] LoadOrCreate(string path)
    {
        if (File.Exists(path))
            return Read(path);

        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        var temporary = Path.Combine(directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            var create = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
                create.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            using (var file = new FileStream(temporary, create))
            {
                file.Write(RandomNumberGenerator.GetBytes(KeyBytes));
                file.Flush(flushToDisk: true);
            }

            // Two processes starting at once: the first move wins and both use its key.
            try
            {
                File.Move(temporary, path, overwrite: false);
            }
            catch (IOException) when (File.Exists(path))
            {
            }
            SyncDirectory(directory);
        }
        finally
        {
            File.Delete(temporary);
        }
        return Read(path);
    }

    private static byte[] Read(string path)
    {
        var key = File.ReadAllBytes(path);
        if (key.Length != KeyBytes)
            throw new InvalidDataException($"The key file {path} does not hold a {KeyBytes}-byte key.");
        return key;
    }

    /// <summary>Makes the rename durable (see <see cref="Queue.DirectorySync"/>).</summary>
    private static void SyncDirectory(string directory)
    {
        try
        {
            Queue.DirectorySync.Flush(directory);
        }
        catch (IOException)
        {
            // Some file systems refuse to flush a directory; the key is then durable on the next sync.
        }
    }
}
