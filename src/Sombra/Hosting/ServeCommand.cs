using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Sombra.Hosting;

/// <summary><c>sombra serve</c>: run the relay until SIGINT or SIGTERM.</summary>
public static class ServeCommand
{
    /// <summary>How long open sessions may run on after a stop is asked for.</summary>
    public static readonly TimeSpan ShutdownGrace = TimeSpan.FromSeconds(30);

    public static Command Create()
    {
        var command = new Command("serve", "Run the relay until SIGINT or SIGTERM");
        command.SetAction(async (parsed, cancellationToken) =>
        {
            var error = parsed.InvocationConfiguration.Error;
            var options = Cli.LoadOptions(parsed, error);
            if (options is null)
                return Cli.Refused;
            if (Submission.TlsCertificate.CheckConfiguredPair(options) is { } certificateError)
            {
                error.WriteLine("error: " + certificateError);
                return Cli.Refused;
            }
            using var host = BuildHost(options);
            try
            {
                await host.RunAsync(CancellationToken.None);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException
                or System.Net.Sockets.SocketException or InvalidOperationException
                or System.Security.Cryptography.CryptographicException)
            {
                // Start-up failures (a port in use, an unreadable certificate) are the operator's
                // to fix: say so in one line, without a stack trace that might carry paths.
                error.WriteLine("error: " + e.Message.ReplaceLineEndings(" "));
                return Cli.Refused;
            }
            return Cli.Ok;
        });
        return command;
    }

    /// <param name="configure">Lets tests replace a stage after the standard wiring.</param>
    public static IHost BuildHost(SombraOptions options, Action<IServiceCollection>? configure = null,
        Action<ILoggingBuilder>? logging = null)
    {
        var builder = new HostApplicationBuilder(new HostApplicationBuilderSettings
        {
            DisableDefaults = true,
            ContentRootPath = Directory.GetCurrentDirectory(),
        });
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = ShutdownGrace);
        ConfigureLogging(builder.Logging, options);
        logging?.Invoke(builder.Logging);
        RelayServices.Add(builder.Services, options);
        configure?.Invoke(builder.Services);
        return builder.Build();
    }

    public static void ConfigureLogging(ILoggingBuilder logging, SombraOptions options)
    {
        logging.ClearProviders();
        logging.SetMinimumLevel(Enum.TryParse<LogLevel>(options.LogLevel, true, out var level)
            ? level : LogLevel.Information);
        // The host's own chatter ("Hosting environment", content root) names paths; keep it down.
        logging.AddFilter("Microsoft", LogLevel.Warning);
        // A start-up failure (a port in use) is printed by serve as one line on standard error;
        // the host's own Error line would repeat it with a stack trace. Its Critical line for a
        // crashed background service stays.
        logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.Critical);
        logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
            o.UseUtcTimestamp = true;
            o.ColorBehavior = LoggerColorBehavior.Disabled;
        });
    }
}
