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

    /// <summary>
    /// Slots counts connections in use; an idle one takes a slot's place when reused. Idle is
    /// guarded by its own lock rather than being a concurrent stack, because the sweep must look
    /// at every entry without making them vanish for a moment: an acquire that found the stack
    /// empty mid-sweep would open a connection beyond the limit.
    /// </summary>
    private sealed class Destination(int slots)
    {
        public readonly SemaphoreSlim Slots = new(slots, slots);
        private readonly List<(OutboundSmtpClient Client, long Since)> _idle = [];

        public bool TryTake(out OutboundSmtpClient client, out bool fresh)
        {
            lock (_idle)
            {
                if (_idle.Count == 0)
                {
                    (client, fresh) = (null!, false);
                    return false;
                }
                var (c, since) = _idle[^1];
                _idle.RemoveAt(_idle.Count - 1);
                (client, fresh) = (c, c.IsConnected && Environment.TickCount64 - since < IdleTimeout.TotalMilliseconds);
                return true;
            }
        }

        public void Put(OutboundSmtpClient client)
        {
            lock (_idle)
                _idle.Add((client, Environment.TickCount64));
        }

        /// <summary>Takes out the connections that are stale (or all of them).</summary>
        public List<OutboundSmtpClient> TakeStale(bool all)
        {
            lock (_idle)
            {
                var stale = _idle.Where(i => all || !i.Client.IsConnected
                    || Environment.TickCount64 - i.Since >= IdleTimeout.TotalMilliseconds).ToList();
                _idle.RemoveAll(stale.Contains);
                return stale.Select(i => i.Client).ToList();
            }
        }
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
            while (destination.TryTake(out var idle, out var fresh))
            {
                if (fresh)
                    return new Lease(this, key, idle, reused: true);
                Close(idle);
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
            destination.Put(client);
        else
            Close(client);
        destination.Slots.Release();
    }

    private void EvictOneIdle()
    {
        foreach (var destination in _destinations.Values)
            if (destination.TryTake(out var idle, out _))
            {
                Close(idle);
                return;
            }
    }

    private void Sweep(bool force)
    {
        foreach (var destination in _destinations.Values)
            foreach (var client in destination.TakeStale(all: force))
                Close(client);
    }

    // QUIT politely in the background; the connection counts against the limit until it is closed.
    private void Close(OutboundSmtpClient client)
    {
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
                _global.Release();
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
