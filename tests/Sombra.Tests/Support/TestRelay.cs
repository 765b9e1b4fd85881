using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Sombra.Anonymity;
using Sombra.Hosting;
using Sombra.Queue;
using Sombra.Submission;

namespace Sombra.Tests.Support;

/// <summary>
/// The real relay host, in process, on ephemeral 127.0.0.1 ports: one plain endpoint, one
/// starttls endpoint and one implicit-TLS endpoint, with a fresh data directory.
/// </summary>
public sealed class TestRelay : IAsyncDisposable
{
    public required IHost Host { get; init; }
    public required SombraOptions Options { get; init; }
    public required LogCapture Logs { get; init; }
    public int PlainPort { get; private init; }
    public int StartTlsPort { get; private init; }
    public int ImplicitPort { get; private init; }
    public string DataDirectory => Options.DataDirectory;

    /// <param name="services">Replaces stages, e.g. with a capturing queue for framing tests.</param>
    public static async Task<TestRelay> StartAsync(Action<SombraOptions>? configure = null,
        Action<IServiceCollection>? services = null)
    {
        var options = new SombraOptions
        {
            DataDirectory = TempDirectory.Create("relay"),
            HostName = "relay.test",
        };
        options.Submission.Endpoints.AddRange([
            new EndpointOptions { Address = "127.0.0.1:0", Tls = "none" },
            new EndpointOptions { Address = "127.0.0.1:0", Tls = "starttls" },
            new EndpointOptions { Address = "127.0.0.1:0", Tls = "implicit" },
        ]);
        configure?.Invoke(options);
        ConfigLoader.ApplyListDefaults(options);
        var errors = ConfigValidator.Validate(options);
        Assert.True(errors.Count == 0, string.Join("; ", errors));
        ConfigLoader.ApplyDerivedDefaults(options);

        var logs = new LogCapture();
        var host = ServeCommand.BuildHost(options, services, logging =>
        {
            logging.ClearProviders();
            logging.AddProvider(logs);
        });
        await host.StartAsync(TestContext.Current.CancellationToken);
        var endpoints = host.Services.GetRequiredService<SubmissionServer>().LocalEndpoints;
        return new TestRelay
        {
            Host = host,
            Options = options,
            Logs = logs,
            PlainPort = endpoints[0].Port,
            StartTlsPort = endpoints.Count > 1 ? endpoints[1].Port : 0,
            ImplicitPort = endpoints.Count > 2 ? endpoints[2].Port : 0,
        };
    }

    public void AddAccount(string name, string password, string? notify = null) =>
        Host.Services.GetRequiredService<AccountStore>().Add(name, password, notify);

    public async ValueTask DisposeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await Host.StopAsync(cts.Token);
        Host.Dispose();
    }
}

/// <summary>Log lines kept in memory, so tests can check what the operator would see.</summary>
public sealed class LogCapture : ILoggerProvider
{
    public ConcurrentQueue<string> Lines { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose() { }

    public string All => string.Join("\n", Lines);

    private sealed class Logger(LogCapture owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception,
            Func<TState, Exception?, string> formatter) =>
            owner.Lines.Enqueue($"{logLevel} {category}: {formatter(state, exception)} {exception}");
    }
}

public static class TempDirectory
{
    public static string Create(string prefix)
    {
        var path = Path.Combine(Path.GetTempPath(), "sombra-tests", $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        return path;
    }
}

/// <summary>
/// A stand-in for the next stages, for the framing tests of the submission server only: it keeps
/// in memory the exact bytes the server handed on, so the tests can check unstuffing and
/// smuggling defences byte for byte. End-to-end tests use the real anonymizer and queue.
/// </summary>
public sealed class CapturingStages : IAnonymizer, IQueueStore
{
    public ConcurrentQueue<(byte[] Body, QueueEnvelope Envelope, SessionFacts Facts)> Committed { get; } = new();
    public bool FailCommits { get; set; }
    public string? Refuse { get; set; }
    private readonly AsyncLocal<SessionFacts?> _facts = new();

    public static void Register(IServiceCollection services, CapturingStages stages)
    {
        services.AddSingleton<IAnonymizer>(stages);
        services.AddSingleton<IQueueStore>(stages);
    }

    public async Task<ScrubResult> ScrubAsync(Stream original, Stream scrubbed, SessionFacts facts,
        CancellationToken cancellationToken)
    {
        await original.CopyToAsync(scrubbed, cancellationToken);
        ((Incoming)scrubbed).Facts = facts;
        return Refuse is null ? new ScrubResult(null, ["by relay.test"], false, false) : ScrubResult.Refused(Refuse);
    }

    public Task InitializeAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public IIncomingMessage CreateIncoming() => new Incoming();

    public Task<string> CommitAsync(IIncomingMessage message, QueueEnvelope envelope, CancellationToken cancellationToken)
    {
        if (FailCommits)
            throw new IOException("No space left on device");
        var incoming = (Incoming)message.Body;
        Committed.Enqueue((incoming.ToArray(), envelope, incoming.Facts!));
        return Task.FromResult(Guid.NewGuid().ToString("N")[..12]);
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private sealed class Incoming : MemoryStream, IIncomingMessage
    {
        public SessionFacts? Facts { get; set; }
        public Stream Body => this;
        public override ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
