using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Sombra.Delivery;
using Sombra.Hosting;
using Sombra.Queue;

namespace Sombra.Tests.Support;

/// <summary>The queue and the delivery service of a relay, in a temporary DataDirectory.</summary>
public sealed class Relay : IAsyncDisposable
{
    public string DataPath { get; }
    public SombraOptions Options { get; }
    public SqliteQueueStore Store { get; }
    public DeliveryService Service { get; }
    public IDeliveryTransport Transport { get; }
    public FakeTimeProvider? Clock { get; }
    private bool _started;

    /// <param name="wrap">Stands between delivery and the store, to make the store fail on purpose.</param>
    public Relay(Action<SombraOptions> configure, bool fakeClock = false, int inlineLimit = SqliteQueueStore.DefaultInlineLimit,
        Func<IDeliveryQueue, IDeliveryQueue>? wrap = null)
    {
        DataPath = Path.Combine(Path.GetTempPath(), "sombra-test-" + Guid.NewGuid().ToString("N"));
        Options = new SombraOptions { HostName = "relay.test", DataDirectory = DataPath };
        Options.Delivery.ConnectTimeout = TimeSpan.FromSeconds(5);
        Options.Delivery.CommandTimeout = TimeSpan.FromSeconds(10);
        configure(Options);
        ConfigLoader.ApplyListDefaults(Options);
        Clock = fakeClock ? new FakeTimeProvider(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero)) : null;
        TimeProvider time = Clock ?? TimeProvider.System;
        Store = new SqliteQueueStore(DataPath, time, inlineLimit);
        Transport = Options.Delivery.Directory is { } dir ? new DirectoryTransport(dir) : new SmtpTransport(Options);
        Service = new DeliveryService(wrap?.Invoke(Store) ?? Store, Transport, Options, time,
            NullLogger<DeliveryService>.Instance);
    }

    /// <summary>A relay whose smarthost is <paramref name="sink"/>, in plain text.</summary>
    public static Relay ToSink(AiosmtpdSink sink, Action<SombraOptions>? more = null, bool fakeClock = false,
        Func<IDeliveryQueue, IDeliveryQueue>? wrap = null) =>
        new(o =>
        {
            o.Delivery.Smarthost = $"127.0.0.1:{sink.Port}";
            o.Delivery.SmarthostTls = "none";
            more?.Invoke(o);
        }, fakeClock, wrap: wrap);

    public DateTimeOffset Now => Clock?.GetUtcNow() ?? DateTimeOffset.UtcNow;

    public async Task StartAsync()
    {
        await Store.InitializeAsync(CancellationToken.None);
        await Service.StartAsync(CancellationToken.None);
        _started = true;
    }

    public Task<string> SubmitAsync(string body, IReadOnlyList<string> recipients, string? notify = null,
        bool eightBit = false, bool utf8 = false, string sender = "anonymous@relay.test",
        DateTimeOffset? releaseAt = null, IReadOnlyList<string>? trace = null) =>
        SubmitAsync(Encoding.UTF8.GetBytes(body), recipients, notify, eightBit, utf8, sender, releaseAt, trace);

    public async Task<string> SubmitAsync(byte[] body, IReadOnlyList<string> recipients, string? notify = null,
        bool eightBit = false, bool utf8 = false, string sender = "anonymous@relay.test",
        DateTimeOffset? releaseAt = null, IReadOnlyList<string>? trace = null)
    {
        await using var incoming = Store.CreateIncoming();
        // Written in small pieces, as a session streams it.
        for (var i = 0; i < body.Length; i += 1000)
            await incoming.Body.WriteAsync(body.AsMemory(i, Math.Min(1000, body.Length - i)));
        return await Store.CommitAsync(incoming, new QueueEnvelope(sender, recipients, notify,
            trace ?? ["from relay.test by relay.test with ESMTPSA id test"], releaseAt ?? Now, eightBit, utf8),
            CancellationToken.None);
    }

    /// <summary>Polls the queue (real time, at most <paramref name="seconds"/>) until the condition holds.</summary>
    public async Task<QueuedMessage?> WaitAsync(string id, Func<QueuedMessage?, bool> condition, int seconds = 15)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            var message = await Store.GetAsync(id, CancellationToken.None);
            if (condition(message))
                return message;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"Message {id} did not reach the expected state in time.");
            await Task.Delay(50);
        }
    }

    /// <summary>Moves the fake clock on and lets the service look at the queue.</summary>
    public void Advance(TimeSpan by)
    {
        Clock!.Advance(by);
        Service.Wake();
    }

    public async ValueTask DisposeAsync()
    {
        if (_started)
            await Service.StopAsync(CancellationToken.None);
        Service.Dispose();
        await Transport.DisposeAsync();
        await Store.DisposeAsync();
        try
        {
            Directory.Delete(DataPath, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
