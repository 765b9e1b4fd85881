namespace Sombra.Hosting;

/// <summary>
/// The per-sender decoy key of issue #3, generated once into DataDirectory. Losing it only
/// changes every account's decoy address once; leaking it lets whoever holds it test which
/// account a decoy belongs to, so the file is 0600 and never logged.
/// </summary>
public static class AnonymityKeys
{
    public const string FileName = "decoy.key";

    /// <summary>The key for the configured mode, or null when no mode needs one.</summary>
    public static byte[]? ForOptions(SombraOptions options) =>
        options.Anonymity.Mode == "mask" && options.Anonymity.DecoySelection == "per-sender"
            ? LoadOrCreate(options.DataPath)
            : null;

    public static byte[] LoadOrCreate(string dataDirectory) =>
        SecretFile.LoadOrCreate(Path.Combine(dataDirectory, FileName));
}
