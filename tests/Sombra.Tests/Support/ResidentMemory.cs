namespace Sombra.Tests.Support;

/// <summary>This process's resident memory, from /proc (Linux).</summary>
public static class ResidentMemory
{
    /// <summary>Resets the peak (VmHWM) to the current size and returns that size in bytes.</summary>
    public static long ResetPeak()
    {
        // Writing 5 to clear_refs resets the peak resident set size (Linux 4.0 and later).
        File.WriteAllText("/proc/self/clear_refs", "5");
        return Read("VmRSS:");
    }

    public static long Peak() => Read("VmHWM:");

    private static long Read(string field)
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith(field, StringComparison.Ordinal));
        return long.Parse(line[field.Length..].Trim().Split(' ')[0]) * 1024;
    }
}
