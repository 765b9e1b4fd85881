using System.Collections.Concurrent;

namespace Sombra.Delivery;

/// <summary>
/// Open SMTP connections, reused for several messages to one destination, within
/// Delivery:MaxConnections in all and Delivery:MaxConnectionsPerDestination each. A connection
/// counts against both limits while it is idle too; an idle one is closed to make room elsewhere.
/// </summary>
internal sealed class ConnectionPool : IAsyncDisposable
{
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(10);

    private readonly SemaphoreSlim _global;
    private readonly int _perDestination;
    private readonly ConcurrentDictionary<string, Destination> _destinations = new(StringComparer.Ordinal);
    private readonly Timer _sweeper;

    public ConnectionPool(int maxConnections, int perDestination)
    {
        _global = new SemaphoreSlim(maxConnections, maxConnections);
        _perDestination = perDestination;
        _sweeper = new Timer(_ => Sweep(force: false), null, IdleTimeout, IdleTimeout);
    }

    private sealed class Destination(int slots)
    {
        public readonly SemaphoreSlim Slots = new(slots, slots);
        public readonly ConcurrentStack<(OutboundSmtpClient Client, long Since)> Idle = new();
    }

    public sealed class Lease(ConnectionPool pool, string key, OutboundSmtpClient client, bool reused)
    {
        public OutboundSmtpClient Client { get; } = client;
        public bool Reused { get; } = reused;
        private int _returned;

        /// <summary>Gives the connection back; it is kept for reuse only when still usable.</summary>
        public void Return(bool keep)
        {
            if (Interlocked.Exchange(ref _returned, 1) == 0)
                pool.Return(key, Client, keep);
        }
    }

    public async Task<Lease> AcquireAsync(string key, Func<CancellationToken, Task<OutboundSmtpClient>> connect,
        CancellationToken cancellationToken)
    {
        var destination = _destinations.GetOrAdd(key, _ => new Destination(_perDestination));
        await destination.Slots.WaitAsync(cancellationToken);
        try
        {
            while (destination.Idle.TryPop(out var idle))
            {
                if (idle.Client.IsConnected && Environment.TickCount64 - idle.Since < IdleTimeout.TotalMilliseconds)
                    return new Lease(this, key, idle.Client, reused: true);
                Close(idle.Client);
            }

            if (!_global.Wait(0))
            {
                EvictOneIdle();
                await _global.WaitAsync(cancellationToken);
            }
            try
            {
                return new Lease(this, key, await connect(cancellationToken), reused: false);
            }
            catch
            {
                _global.Release();
                throw;
            }
        }
        catch
        {
            destination.Slots.Release();
            throw;
        }
    }

    private void Return(string key, OutboundSmtpClient client, bool keep)
    {
        var destination = _destinations[key];
        if (keep && client.IsConnected)
            destination.Idle.Push((client, Environment.TickCount64));
        else
            Close(client);
        destination.Slots.Release();
    }

    private void EvictOneIdle()
    {
        foreach (var destination in _destinations.Values)
            if (destination.Idle.TryPop(out var idle))
            {
                Close(idle.Client);
                return;
            }
    }

    private void Sweep(bool force)
    {
        foreach (var destination in _destinations.Values)
        {
            var keep = new List<(OutboundSmtpClient, long)>();
            while (destination.Idle.TryPop(out var idle))
            {
                if (!force && idle.Client.IsConnected
                    && Environment.TickCount64 - idle.Since < IdleTimeout.TotalMilliseconds)
                    keep.Add(idle);
                else
                    Close(idle.Client);
            }
            for (var i = keep.Count - 1; i >= 0; i--)
                destination.Idle.Push(keep[i]);
        }
    }

    // QUIT politely in the background; the slot is free at once.
    private void Close(OutboundSmtpClient client)
    {
        _global.Release();
        _ = Task.Run(async () =>
        {
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                if (client.IsConnected)
                    await client.DisconnectAsync(quit: true, timeout.Token);
            }
            catch (Exception)
            {
                // The connection is being thrown away; how it ends does not matter.
            }
            finally
            {
                client.Dispose();
            }
        });
    }

    public ValueTask DisposeAsync()
    {
        _sweeper.Dispose();
        Sweep(force: true);
        return ValueTask.CompletedTask;
    }
}
