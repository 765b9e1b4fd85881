using System.CommandLine;
using System.CommandLine.Parsing;

namespace Sombra.Hosting;

/// <summary>
/// The command line. Exit codes: 0 success, 1 refused input or configuration, 2 usage error.
/// </summary>
public static class Cli
{
    public const int Ok = 0;
    public const int Refused = 1;
    public const int Usage = 2;

    /// <summary>Every command takes it; without it the embedded defaults apply.</summary>
    public static readonly Option<string?> ConfigOption = new("--config")
    {
        Description = "JSON configuration file (default: the embedded defaults)",
        Recursive = true,
    };

    public static RootCommand Build()
    {
        var root = new RootCommand("Sombra: an anonymizing SMTP relay");
        root.Options.Add(ConfigOption);
        root.Subcommands.Add(ServeCommand.Create());
        root.Subcommands.Add(CheckCommand.Create());
        root.Subcommands.Add(UserCommands.Create());
        root.Subcommands.Add(OptOutCommands.Create());
        root.Subcommands.Add(ScrubCommand.Create());
        root.Subcommands.Add(QueueCommands.Create());
        return root;
    }

    public static async Task<int> RunAsync(string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        var root = Build();
        var parsed = root.Parse(args);
        var config = new InvocationConfiguration
        {
            Output = output ?? Console.Out,
            Error = error ?? Console.Error,
        };
        if (parsed.Errors.Count > 0)
        {
            foreach (var e in parsed.Errors)
                config.Error.WriteLine(e.Message);
            config.Error.WriteLine("Try 'sombra --help'.");
            return Usage;
        }
        return await parsed.InvokeAsync(config);
    }

    /// <summary>Loads the configuration for a command, printing errors one per line.</summary>
    public static SombraOptions? LoadOptions(ParseResult parsed, TextWriter error)
    {
        var (options, errors) = ConfigLoader.Load(parsed.GetValue(ConfigOption));
        foreach (var e in errors)
            error.WriteLine("error: " + e);
        return options;
    }
}
