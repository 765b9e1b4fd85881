using System.Text.Json;
using Sombra.Hosting;

namespace Sombra.Tests.Support;

/// <summary>Runs the real command line in process, with a configuration file written for it.</summary>
public static class CliRunner
{
    public sealed record Result(int ExitCode, string Output, string Error);

    private static readonly SemaphoreSlim ConsoleLock = new(1, 1);

    public static Task<Result> RunAsync(SombraOptions options, params string[] args) =>
        RunWithConfigAsync(WriteConfig(options), null, args);

    public static string WriteConfig(SombraOptions options)
    {
        var path = Path.Combine(TempDirectory.Create("config"), "sombra.json");
        File.WriteAllText(path, JsonSerializer.Serialize(new
        {
            options.HostName,
            options.DataDirectory,
        }));
        return path;
    }

    /// <summary>Runs <c>sombra args --config path</c>; standard input is replaced while it runs.</summary>
    public static async Task<Result> RunWithConfigAsync(string? config, string? input, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var all = config is null ? args : [.. args, "--config", config];
        await ConsoleLock.WaitAsync();
        var stdin = Console.In;
        try
        {
            Console.SetIn(new StringReader(input ?? ""));
            var code = await Cli.RunAsync(all, output, error);
            return new Result(code, output.ToString(), error.ToString());
        }
        finally
        {
            Console.SetIn(stdin);
            ConsoleLock.Release();
        }
    }
}
