using System.Runtime.InteropServices;

namespace Sombra.Queue;

/// <summary>
/// fsync of a directory. A rename is durable only once the directory that holds it is flushed
/// (POSIX leaves it to the file system; ext4 and XFS need it), and .NET has no API for it:
/// FileStream cannot open a directory. So on Linux and macOS we call libc directly.
/// </summary>
internal static class DirectorySync
{
    private const int O_RDONLY = 0;

    // DllImport rather than LibraryImport: the generated stubs need unsafe code for the whole project.
    [DllImport("libc", EntryPoint = "open", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false)]
    private static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static extern int Fsync(int fd);

    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    private static extern int Close(int fd);

    public static void Flush(string directory)
    {
        // Windows makes a rename durable with the file's own metadata; nothing to do there.
        if (OperatingSystem.IsWindows())
            return;
        var fd = Open(directory, O_RDONLY);
        if (fd < 0)
            throw new IOException($"Could not open the queue directory to flush it (errno {Marshal.GetLastPInvokeError()}).");
        try
        {
            if (Fsync(fd) != 0)
                throw new IOException($"Could not flush the queue directory (errno {Marshal.GetLastPInvokeError()}).");
        }
        finally
        {
            Close(fd);
        }
    }
}
