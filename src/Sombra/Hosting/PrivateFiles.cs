using System.Runtime.InteropServices;

namespace Sombra.Hosting;

/// <summary>
/// Sets the process umask to 077 before anything is written, so that every file and directory
/// Sombra creates (queue.db and SQLite's -wal and -shm beside it, queue bodies, keys, accounts,
/// the certificate, DataDirectory itself) is readable by its own user only. Setting modes file
/// by file missed those made by others on our behalf: SQLite made its files 0644 and the
/// directories came out 0755. .NET has no API for the umask, so libc is called directly.
/// </summary>
internal static class PrivateFiles
{
    private const uint OwnerOnly = 0b000_111_111; // 077: no group or other bits

    // DllImport rather than LibraryImport: the generated stubs need unsafe code for the whole project.
    [DllImport("libc", EntryPoint = "umask")]
    private static extern uint Umask(uint mask);

    public static void Restrict()
    {
        // Windows has no umask; its files inherit the directory's ACL.
        if (OperatingSystem.IsWindows())
            return;
        Umask(OwnerOnly);
    }
}
