using System.Collections.Concurrent;
using Sombra.Hosting;

namespace Sombra.Submission;

/// <summary>
/// Rate limits per account and per client network, and AUTH failure throttling per client
/// network (issue 6). All of it lives in memory, keyed by <see cref="ClientKeys"/> hashes, and
/// is dropped when the key rotates: nothing here could tell a seized machine who sent what.
/// </summary>
public sealed class AbuseControls
{
    public static readonly TimeSpan Window = TimeSpan.FromHours(1);

    /// <summary>The longest single AUTH delay, so a throttled client is slowed, not hung.</summary>
    public static readonly TimeSpan MaxAuthDelay = TimeSpan.FromSeconds(30);

    private readonly LimitsOptions _limits;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, Usage> _usage = new();
    private readonly ConcurrentDictionary<string, AuthFailures> _auth = new();

    public AbuseControls(SombraOptions options, ClientKeys keys, TimeProvider time)
    {
        _limits = options.Limits;
        _time = time;
        keys.Rotated += () =>
        {
            _usage.Clear();
            _auth.Clear();
        };
    }

    /// <summary>True when one more message would pass a limit for any of these keys.</summary>
    public bool MessageLimitReached(IEnumerable<string> keys) =>
        _limits.MessagesPerHour > 0 && keys.Any(k => Get(k).Messages(Now) >= _limits.MessagesPerHour);

    /// <summary>True when <paramref name="pending"/> more recipients would pass a limit.</summary>
    public bool RecipientLimitReached(IEnumerable<string> keys, int pending) =>
        _limits.RecipientsPerHour > 0
        && keys.Any(k => Get(k).Recipients(Now) + pending > _limits.RecipientsPerHour);

    public void RecordMessage(IEnumerable<string> keys, int recipients)
    {
        if (_limits.MessagesPerHour == 0 && _limits.RecipientsPerHour == 0)
            return;
        foreach (var key in keys)
            Get(key).Add(Now, recipients);
    }

    /// <summary>Whether AUTH (and new connections) from this network are refused for now.</summary>
    public bool AuthBlocked(string clientKey) =>
        _auth.TryGetValue(clientKey, out var f) && f.BlockedUntil(Now, _limits) > Now;

    /// <summary>How long to wait before answering this network's next AUTH attempt.</summary>
    public TimeSpan AuthDelay(string clientKey)
    {
        if (!_auth.TryGetValue(clientKey, out var f))
            return TimeSpan.Zero;
        var excess = f.Count(Now, _limits) - _limits.AuthFailuresBeforeDelay;
        if (excess < 0)
            return TimeSpan.Zero;
        var delay = _limits.AuthFailureDelay * Math.Pow(2, Math.Min(excess, 10));
        return delay < MaxAuthDelay ? delay : MaxAuthDelay;
    }

    /// <summary>Counts a failure; true when the network is now blocked.</summary>
    public bool AuthFailed(string clientKey)
    {
        var f = _auth.GetOrAdd(clientKey, _ => new AuthFailures());
        f.Add(Now);
        return f.Count(Now, _limits) >= _limits.AuthFailuresBeforeBlock;
    }

    private DateTimeOffset Now => _time.GetUtcNow();

    private Usage Get(string key) => _usage.GetOrAdd(key, _ => new Usage());

    /// <summary>Messages and recipients in the last hour, as a list of timestamps.</summary>
    private sealed class Usage
    {
        private readonly Queue<(DateTimeOffset At, int Recipients)> _events = new();

        public int Messages(DateTimeOffset now)
        {
            lock (_events)
            {
                Expire(now);
                return _events.Count;
            }
        }

        public int Recipients(DateTimeOffset now)
        {
            lock (_events)
            {
                Expire(now);
                return _events.Sum(e => e.Recipients);
            }
        }

        public void Add(DateTimeOffset now, int recipients)
        {
            lock (_events)
                _events.Enqueue((now, recipients));
        }

        private void Expire(DateTimeOffset now)
        {
            while (_events.Count > 0 && now - _events.Peek().At >= Window)
                _events.Dequeue();
        }
    }

    /// <summary>Failures within the block duration: they decay, so a typo is forgotten.</summary>
    private sealed class AuthFailures
    {
        private readonly Queue<DateTimeOffset> _failures = new();

        public void Add(DateTimeOffset now)
        {
            lock (_failures)
                _failures.Enqueue(now);
        }

        public int Count(DateTimeOffset now, LimitsOptions limits)
        {
            lock (_failures)
            {
                while (_failures.Count > 0 && now - _failures.Peek() >= limits.AuthBlockDuration)
                    _failures.Dequeue();
                return _failures.Count;
            }
        }

        public DateTimeOffset BlockedUntil(DateTimeOffset now, LimitsOptions limits)
        {
            lock (_failures)
            {
                if (Count(now, limits) < limits.AuthFailuresBeforeBlock)
                    return DateTimeOffset.MinValue;
                return _failures.Last() + limits.AuthBlockDuration;
            }
        }
    }
}
