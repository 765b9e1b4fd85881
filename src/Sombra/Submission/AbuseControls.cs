using System.Net;
using Sombra.Hosting;

namespace Sombra.Submission;

/// <summary>
/// Rate limits per account and per client network, and AUTH failure throttling per client
/// network (issue 6). All of it lives in memory, keyed by <see cref="ClientKeys"/> hashes:
/// nothing here could tell a seized machine who sent what.
/// </summary>
public sealed class AbuseControls
{
    public static readonly TimeSpan Window = TimeSpan.FromHours(1);

    /// <summary>The longest single AUTH delay, so a throttled client is slowed, not hung.</summary>
    public static readonly TimeSpan MaxAuthDelay = TimeSpan.FromSeconds(30);

    /// <summary>How often emptied entries are dropped, so the tables do not grow with every client.</summary>
    private static readonly TimeSpan SweepInterval = TimeSpan.FromMinutes(10);

    private readonly LimitsOptions _limits;
    private readonly ClientKeys _keys;
    private readonly TimeProvider _time;

    // One lock for all of it: a message counts against two keys at once, and both must agree.
    private readonly Lock _lock = new();
    private readonly KeyedTable<Usage> _usage = new(() => new Usage());
    private readonly KeyedTable<AuthFailures> _auth = new(() => new AuthFailures());
    private DateTimeOffset _swept;

    public AbuseControls(SombraOptions options, ClientKeys keys, TimeProvider time)
    {
        _limits = options.Limits;
        _keys = keys;
        _time = time;
        _swept = time.GetUtcNow();
    }

    /// <summary>True when one more message would pass a limit for this client or account.</summary>
    public bool MessageLimitReached(IPAddress client, string? account)
    {
        if (_limits.MessagesPerHour == 0)
            return false;
        var keys = LimitKeys(client, account);
        lock (_lock)
            return keys.Any(k => _usage.Get(k).Messages(Now) >= _limits.MessagesPerHour);
    }

    /// <summary>True when <paramref name="pending"/> more recipients would pass a limit.</summary>
    public bool RecipientLimitReached(IPAddress client, string? account, int pending)
    {
        if (_limits.RecipientsPerHour == 0)
            return false;
        var keys = LimitKeys(client, account);
        lock (_lock)
            return keys.Any(k => _usage.Get(k).Recipients(Now) + pending > _limits.RecipientsPerHour);
    }

    public void RecordMessage(IPAddress client, string? account, int recipients)
    {
        if (_limits.MessagesPerHour == 0 && _limits.RecipientsPerHour == 0)
            return;
        var keys = LimitKeys(client, account);
        lock (_lock)
        {
            foreach (var key in keys)
                _usage.Get(key).Add(Now, recipients);
            SweepNow();
        }
    }

    /// <summary>Whether AUTH (and new connections) from this network are refused for now.</summary>
    public bool AuthBlocked(IPAddress client)
    {
        var key = _keys.Network(client);
        lock (_lock)
            return _auth.Find(key)?.Count(Now, _limits) >= _limits.AuthFailuresBeforeBlock;
    }

    /// <summary>How long to wait before answering this network's next AUTH attempt.</summary>
    public TimeSpan AuthDelay(IPAddress client)
    {
        var key = _keys.Network(client);
        int count;
        lock (_lock)
            count = _auth.Find(key)?.Count(Now, _limits) ?? 0;
        var excess = count - _limits.AuthFailuresBeforeDelay;
        if (excess < 0)
            return TimeSpan.Zero;
        var delay = _limits.AuthFailureDelay * Math.Pow(2, Math.Min(excess, 10));
        return delay < MaxAuthDelay ? delay : MaxAuthDelay;
    }

    /// <summary>Counts a failure; true when the network is now blocked.</summary>
    public bool AuthFailed(IPAddress client)
    {
        var key = _keys.Network(client);
        lock (_lock)
        {
            var failures = _auth.Get(key);
            failures.Add(Now);
            SweepNow();
            return failures.Count(Now, _limits) >= _limits.AuthFailuresBeforeBlock;
        }
    }

    private ClientKeys.Hash[] LimitKeys(IPAddress client, string? account) => account is null
        ? [_keys.Network(client)]
        : [_keys.Network(client), _keys.Account(account)];

    private DateTimeOffset Now => _time.GetUtcNow();

    private void SweepNow()
    {
        var now = Now;
        if (now - _swept < SweepInterval)
            return;
        _swept = now;
        _usage.Sweep(u => u.Messages(now) == 0);
        _auth.Sweep(f => f.Count(now, _limits) == 0);
    }

    /// <summary>Messages and recipients in the last hour, oldest first. The owner locks.</summary>
    private sealed class Usage
    {
        private readonly Queue<(DateTimeOffset At, int Recipients)> _events = new();

        public int Messages(DateTimeOffset now)
        {
            Expire(now);
            return _events.Count;
        }

        public int Recipients(DateTimeOffset now)
        {
            Expire(now);
            return _events.Sum(e => e.Recipients);
        }

        public void Add(DateTimeOffset now, int recipients) => _events.Enqueue((now, recipients));

        private void Expire(DateTimeOffset now)
        {
            while (_events.Count > 0 && now - _events.Peek().At >= Window)
                _events.Dequeue();
        }
    }

    /// <summary>Failures within the block duration: they decay, so a typo is forgotten. The owner locks.</summary>
    private sealed class AuthFailures
    {
        private readonly Queue<DateTimeOffset> _failures = new();

        public void Add(DateTimeOffset now) => _failures.Enqueue(now);

        public int Count(DateTimeOffset now, LimitsOptions limits)
        {
            while (_failures.Count > 0 && now - _failures.Peek() >= limits.AuthBlockDuration)
                _failures.Dequeue();
            return _failures.Count;
        }
    }
}
