using System.Security.Cryptography;

namespace Sombra.Hosting;

/// <summary>
/// The per-sender decoy key of issue #3, generated once into DataDirectory. Losing it only
/// changes every account's decoy address once; leaking it lets whoever holds it test which
/// account a decoy belongs to, so the file is 0600 and never logged.
/// </summary>
public static class AnonymityKeys
{
    public const string FileName = "decoy.key";
    private const int KeyBytes = 32;

    /// <summary>The key for the configured mode, or null when no mode needs one.</summary>
    public static byte[]? ForOptions(SombraOptions options) =>
        options.Anonymity.Mode == "mask" && options.Anonymity.DecoySelection == "per-sender"
            ? LoadOrCreate(options.DataPath)
            : null;

    /// <summary>Reads the key, or creates it: written to a temporary file, fsynced, then linked in.</summary>
    public static byte[] LoadOrCreate(string dataDirectory)
    {
        var path = Path.Combine(dataDirectory, FileName);
        if (File.Exists(path))
            return Read(path);

        Directory.CreateDirectory(dataDirectory);
        var temporary = Path.Combine(dataDirectory, $".{FileName}.{Guid.NewGuid():N}.tmp");
        try
        {
            var create = new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                Options = FileOptions.None,
            };
            if (!OperatingSystem.IsWindows())
                create.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            using (var file = new FileStream(temporary, create))
            {
                file.Write(RandomNumberGenerator.GetBytes(KeyBytes));
                file.Flush(flushToDisk: true);
            }

            // Two processes starting at once: the first link wins and both use its key.
            try
            {
                File.Move(temporary, path, overwrite: false);
            }
            catch (IOException) when (File.Exists(path))
            {
            }
            SyncDirectory(dataDirectory);
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
            throw new InvalidDataException($"The decoy key file {path} does not hold a {KeyBytes}-byte key.");
        return key;
    }

    /// <summary>Makes the rename durable; .NET has no directory fsync, but opening it read-only works on Linux.</summary>
    private static void SyncDirectory(string directory)
    {
        if (OperatingSystem.IsWindows())
            return;
        try
        {
            using var handle = File.OpenHandle(directory, FileMode.Open, FileAccess.Read);
            RandomAccess.FlushToDisk(handle);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Some file systems refuse to open a directory; the key is then durable on the next sync.
        }
    }
}
