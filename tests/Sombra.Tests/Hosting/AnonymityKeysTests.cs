using Sombra.Hosting;
using Xunit;

namespace Sombra.Tests.Hosting;

public sealed class AnonymityKeysTests
{
    [Fact]
    public void The_key_is_created_once_private_and_then_reused()
    {
        var directory = Path.Combine(Path.GetTempPath(), "sombra-keys-" + Guid.NewGuid().ToString("N"));
        try
        {
            var first = AnonymityKeys.LoadOrCreate(directory);
            var second = AnonymityKeys.LoadOrCreate(directory);

            Assert.Equal(32, first.Length);
            Assert.Equal(first, second);
            var path = Path.Combine(directory, AnonymityKeys.FileName);
            if (!OperatingSystem.IsWindows())
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            Assert.Single(Directory.GetFiles(directory));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void Only_per_sender_mask_mode_needs_a_key()
    {
        var options = new SombraOptions { DataDirectory = "/nonexistent/never-created" };
        Assert.Null(AnonymityKeys.ForOptions(options));
        options.Anonymity.Mode = "mask";
        Assert.Null(AnonymityKeys.ForOptions(options));
    }
}
