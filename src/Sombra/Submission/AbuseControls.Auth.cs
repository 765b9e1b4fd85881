using System.Net;
using Sombra.Hosting;

namespace Sombra.Submission;

/// <summary>
/// AUTH throttling per client network (per attempted account name for a shared network): after
/// a few failures each answer comes later, and at the limit the network, or that name, is shut
/// out for <c>Limits:AuthBlockDuration</c>. An attempt counts from before its password is
/// checked, so parallel connections cannot between them have more passwords checked than the
/// limit allows.
/// </summary>
public sealed partial class AbuseControls
{
    public enum AuthVerdict
    {
        /// <summary>Check the password, after <see cref="AuthAttempt.Delay"/>.</summary>
        Check,
        /// <summary>Attempts in progress already reach the limit: try again when they end.</summary>
        Busy,
        /// <summary>The limit is reached: refuse and close.</summary>
        Blocked,
    }

    /// <summary>
    /// Whether AUTH (and new connections) from this network are refused for now; never for a
    /// shared network, whose failures count per account name.
    /// </summary>
    public bool AuthBlocked(IPAddress client)
    {
        if (Shared(client))
            return false;
        var key = _keys.Network(client);
        lock (_lock)
            return _auth.Find(key)?.Failures(Now, _limits) >= _limits.AuthFailuresBeforeBlock;
    }

    /// <summary>Counts an AUTH attempt before its password is checked; dispose it when done.</summary>
    public AuthAttempt BeginAuth(IPAddress client, string user)
    {
        var key = Shared(client) ? _keys.AuthName(user) : _keys.Network(client);
        lock (_lock)
        {
            var tally = _auth.Get(key);
            var failures = tally.Failures(Now, _limits);
            if (failures >= _limits.AuthFailuresBeforeBlock)
                return new AuthAttempt(this, null, AuthVerdict.Blocked, TimeSpan.Zero);
            if (failures + tally.Pending >= _limits.AuthFailuresBeforeBlock)
                return new AuthAttempt(this, null, AuthVerdict.Busy, TimeSpan.Zero);
            tally.Pending++;
            SweepNow();
            return new AuthAttempt(this, tally, AuthVerdict.Check, AuthDelay(failures));
        }
    }

    /// <summary>The delay before answering, by the failures so far: it doubles with each one.</summary>
    private TimeSpan AuthDelay(int failures)
    {
        var excess = failures - _limits.AuthFailuresBeforeDelay;
        if (excess < 0)
            return TimeSpan.Zero;
        var delay = _limits.AuthFailureDelay * Math.Pow(2, Math.Min(excess, 10));
        return delay < MaxAuthDelay ? delay : MaxAuthDelay;
    }

    /// <summary>One AUTH attempt: a failure stays counted, a success or an abandoned attempt does not.</summary>
    public sealed class AuthAttempt : IDisposable
    {
        private readonly AbuseControls _owner;
        private readonly AuthFailures? _tally;
        private bool _settled;

        internal AuthAttempt(AbuseControls owner, AuthFailures? tally, AuthVerdict verdict, TimeSpan delay)
        {
            _owner = owner;
            _tally = tally;
            _settled = tally is null;
            Verdict = verdict;
            Delay = delay;
        }

        public AuthVerdict Verdict { get; }
        public TimeSpan Delay { get; }

        /// <summary>Records the failure; true when the limit is now reached.</summary>
        public bool Failed()
        {
            lock (_owner._lock)
            {
                if (_settled)
                    return false;
                _settled = true;
                _tally!.Pending--;
                _tally.Add(_owner.Now);
                return _tally.Failures(_owner.Now, _owner._limits) >= _owner._limits.AuthFailuresBeforeBlock;
            }
        }

        public void Dispose()
        {
            lock (_owner._lock)
            {
                if (_settled)
                    return;
                _settled = true;
                _tally!.Pending--;
            }
        }
    }

    /// <summary>
    /// Failures within the block duration (they decay, so a typo is forgotten) and attempts
    /// still being checked. The owner locks.
    /// </summary>
    internal sealed class AuthFailures
    {
        private readonly Queue<DateTimeOffset> _failures = new();

        public int Pending { get; set; }

        public void Add(DateTimeOffset now) => _failures.Enqueue(now);

        public int Failures(DateTimeOffset now, LimitsOptions limits)
        {
            while (_failures.Count > 0 && now - _failures.Peek() >= limits.AuthBlockDuration)
                _failures.Dequeue();
            return _failures.Count;
        }

        public bool Empty(DateTimeOffset now, LimitsOptions limits) => Pending == 0 && Failures(now, limits) == 0;
    }
}
