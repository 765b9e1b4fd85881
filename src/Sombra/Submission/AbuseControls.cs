using System.Net;
using Sombra.Hosting;

namespace Sombra.Submission;

/// <summary>
/// Rate limits per account and per client network, and AUTH failure throttling per client
/// network (issue 6). All of it lives in memory, keyed by <see cref="ClientKeys"/> hashes:
/// nothing here could tell a seized machine who sent what.
/// </summary>
/// <remarks>
/// Clients in <c>Limits:SharedNetworks</c> (a Tor onion service's 127.0.0.1, a large NAT) are
/// many people behind one address: per-network limits would let one of them shut out all the
/// others. For them only the per-account limits apply, and AUTH failures count per attempted
/// account name.
/// </remarks>
public sealed partial class AbuseControls
{
    public static readonly TimeSpan Window = TimeSpan.FromHours(1);

    /// <summary>The longest single AUTH delay, so a throttled client is slowed, not hung.</summary>
    public static readonly TimeSpan MaxAuthDelay = TimeSpan.FromSeconds(30);

    /// <summary>How often emptied entries are dropped, so the tables do not grow with every client.</summary>
    private static readonly TimeSpan SweepInterval = TimeSpan.FromMinutes(10);

    private readonly LimitsOptions _limits;
    private readonly IPNetwork[] _shared;
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
        _shared = _limits.SharedNetworks.Select(n => IPNetwork.Parse(n)).ToArray();
        _keys = keys;
        _time = time;
        _swept = time.GetUtcNow();
    }

    /// <summary>
    /// Takes one message from the allowance of this client and account, at MAIL, or refuses
    /// (false). Taking at once, not counting after DATA, is what stops parallel sessions from
    /// all passing the check before any of them is counted.
    /// </summary>
    public bool TryReserveMessage(IPAddress client, string? account, out Reservation reservation)
    {
        if (_limits.MessagesPerHour == 0 && _limits.RecipientsPerHour == 0)
        {
            reservation = new Reservation(this, []);
            return true;
        }
        var keys = LimitKeys(client, account);
        lock (_lock)
        {
            var now = Now;
            var usages = keys.Select(_usage.Get).ToArray();
            if (_limits.MessagesPerHour > 0 && usages.Any(u => u.Messages(now) >= _limits.MessagesPerHour))
            {
                reservation = null!;
                return false;
            }
            reservation = new Reservation(this, usages);
            foreach (var usage in usages)
                usage.Add(reservation.Use);
            SweepNow();
            return true;
        }
    }

    /// <summary>
    /// What a transaction has taken from the allowance: one message and its recipients so far.
    /// It stands once the message is queued (<see cref="Keep"/>); any other end of the
    /// transaction gives it back (<see cref="Release"/>), so a refused or abandoned message
    /// costs nothing.
    /// </summary>
    public sealed class Reservation
    {
        private readonly AbuseControls _owner;
        private readonly Usage[] _usages;
        private bool _settled;

        internal Reservation(AbuseControls owner, Usage[] usages)
        {
            _owner = owner;
            _usages = usages;
            Use = new Usage.Event(owner.Now);
        }

        internal Usage.Event Use { get; }

        /// <summary>Takes one more recipient, at RCPT, or refuses (false).</summary>
        public bool TryAddRecipient()
        {
            var limit = _owner._limits.RecipientsPerHour;
            lock (_owner._lock)
            {
                if (limit > 0 && _usages.Any(u => u.Recipients(_owner.Now) + 1 > limit))
                    return false;
                Use.Recipients++;
                return true;
            }
        }

        public void Keep()
        {
            lock (_owner._lock)
                _settled = true;
        }

        public void Release()
        {
            lock (_owner._lock)
            {
                if (_settled)
                    return;
                _settled = true;
                foreach (var usage in _usages)
                    usage.Remove(Use);
            }
        }
    }

    private ClientKeys.Hash[] LimitKeys(IPAddress client, string? account) => (Shared(client), account) switch
    {
        (true, null) => [],
        (true, _) => [_keys.Account(account)],
        (false, null) => [_keys.Network(client)],
        (false, _) => [_keys.Network(client), _keys.Account(account)],
    };

    private bool Shared(IPAddress client)
    {
        if (client.IsIPv4MappedToIPv6)
            client = client.MapToIPv4();
        return _shared.Any(n => n.Contains(client));
    }

    private DateTimeOffset Now => _time.GetUtcNow();

    private void SweepNow()
    {
        var now = Now;
        if (now - _swept < SweepInterval)
            return;
        _swept = now;
        _usage.Sweep(u => u.Messages(now) == 0);
        _auth.Sweep(f => f.Empty(now, _limits));
    }

    /// <summary>Messages and recipients in the last hour, taken or kept. The owner locks.</summary>
    internal sealed class Usage
    {
        internal sealed class Event(DateTimeOffset at)
        {
            public DateTimeOffset At { get; } = at;
            public int Recipients { get; set; }
        }

        private readonly List<Event> _events = [];

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

        public void Add(Event use) => _events.Add(use);

        public void Remove(Event use) => _events.Remove(use);

        private void Expire(DateTimeOffset now) => _events.RemoveAll(e => now - e.At >= Window);
    }
}
