using System.Collections.Concurrent;
using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Sombra.Anonymity;
using Sombra.Hosting;
using Sombra.Queue;
using Sombra.Submission;

namespace Sombra.Delivery;

/// <summary>
/// Takes due messages from the queue and hands them on, per recipient domain, recording every
/// recipient's outcome durably. It starts with the relay, so what a crash left queued is resumed
/// without anyone's help. Logs name queue ids, counts and outcomes, never addresses.
/// </summary>
public sealed class DeliveryService : BackgroundService
{
    /// <summary>How often the queue is looked at even without a wake-up (operator commands run elsewhere).</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(1);

    private readonly IDeliveryQueue _store;
    private readonly IDeliveryTransport _transport;
    private readonly PoolMix? _pool;
    private readonly SombraOptions _options;
    private readonly RetrySchedule _retry;
    private readonly TimeProvider _time;
    private readonly SombraMetrics? _metrics;
    private readonly ILogger<DeliveryService> _log;
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(
        new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly ConcurrentDictionary<string, Task> _inFlight = new();
    // Messages whose attempt broke for a reason of ours (the store failing, say): they stay
    // claimed, so they are not taken again, until this time.
    private readonly ConcurrentDictionary<string, DateTimeOffset> _coolingDown = new();
    private readonly SemaphoreSlim _slots;
    private readonly bool _perDomain;

    public DeliveryService(IDeliveryQueue store, IDeliveryTransport transport, SombraOptions options,
        TimeProvider time, ILogger<DeliveryService> log, SombraMetrics? metrics = null, PoolMix? pool = null)
    {
        _store = store;
        _transport = transport;
        _pool = pool;
        _options = options;
        _retry = new RetrySchedule(options.Delivery);
        _time = time;
        _log = log;
        _metrics = metrics;
        _slots = new SemaphoreSlim(options.Delivery.MaxConnections);
        // A smarthost or the directory takes every recipient in one go; direct delivery goes per domain.
        _perDomain = options.Delivery.Smarthost is null && options.Delivery.Directory is null;
        _store.WorkAvailable += Wake;
    }

    /// <summary>Look at the queue now (after a commit, a retry, or a test moving its clock).</summary>
    public void Wake() => _wake.Writer.TryWrite(true);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await _store.InitializeAsync(stoppingToken);
        _log.LogInformation("Delivery started");
        while (!stoppingToken.IsCancellationRequested)
        {
            TimeSpan delay;
            try
            {
                delay = await ScheduleAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                // The store may fail for a while (a locked or full disk); submission goes on, and
                // so does this loop, a poll interval later.
                _log.LogError("Delivery could not read the queue ({Error}); trying again", e.GetType().Name);
                delay = PollInterval;
            }
            try
            {
                await WaitForWork(delay, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
        await Task.WhenAll(_inFlight.Values);
    }

    /// <summary>Starts what is due; returns how long the loop may sleep unless woken.</summary>
    private async Task<TimeSpan> ScheduleAsync(CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        foreach (var (id, until) in _coolingDown)
            if (until <= now && _coolingDown.TryRemove(id, out _))
                _store.Release(id);
        if (_pool is not null)
            await _pool.RoundAsync(_store, now, ct);

        var free = _options.Delivery.MaxConnections - _inFlight.Count;
        if (free > 0)
            foreach (var message in await _store.FindDueAsync(now, free, ct))
            {
                await _slots.WaitAsync(ct);
                // Registered before it starts, so that its own removal can never come first.
                var start = new Task<Task>(() => RunOne(message.Id, ct));
                if (!_inFlight.TryAdd(message.Id, start.Unwrap()))
                {
                    _slots.Release();
                    continue;
                }
                start.Start(TaskScheduler.Default);
            }

        var next = await _store.NextDueAsync(ct);
        var delay = next is { } n && n > now ? n - now : PollInterval;
        if (_pool is not null && _pool.NextRound - now < delay)
            delay = _pool.NextRound - now;
        return delay < PollInterval ? delay : PollInterval;
    }

    private async Task WaitForWork(TimeSpan delay, CancellationToken ct)
    {
        if (delay > TimeSpan.Zero)
        {
            using var timer = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var sleep = Task.Delay(delay, _time, timer.Token);
            var woken = _wake.Reader.WaitToReadAsync(timer.Token).AsTask();
            await Task.WhenAny(sleep, woken);
            timer.Cancel();
        }
        _wake.Reader.TryRead(out _);
        ct.ThrowIfCancellationRequested();
    }

    private async Task RunOne(string id, CancellationToken ct)
    {
        var claimed = false;
        try
        {
            claimed = await ProcessAsync(id, ct);
            if (claimed)
                _store.Release(id);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopping: what was not recorded stays pending and is sent again after the restart.
        }
        catch (Exception e)
        {
            // A fault of ours, not of the next hop: the outcome may not be recorded, so taking the
            // message again at once could send it again and again. It waits, claimed, for the first
            // retry delay. Exception types only: messages may quote a reply that names a recipient.
            _log.LogError("Delivery of {Id} failed unexpectedly ({Error}); it stays queued", id, e.GetType().Name);
            _coolingDown[id] = _time.GetUtcNow() + _retry.First;
        }
        finally
        {
            _inFlight.TryRemove(id, out _);
            _slots.Release();
            Wake();
        }
    }

    /// <returns>False when the message was gone or already taken.</returns>
    internal async Task<bool> ProcessAsync(string id, CancellationToken ct)
    {
        var message = await _store.ClaimAsync(id, ct);
        if (message is null)
            return false;

        var now = _time.GetUtcNow();
        var due = message.Recipients
            .Where(r => r.State == RecipientState.Pending && r.NextAttempt <= now).ToList();
        var recipients = due.Count > 0 ? await AttemptAsync(message, due, now, ct) : message.Recipients;
        if (recipients is not null && recipients.All(r => r.State != RecipientState.Pending))
            await FinishAsync(message with { Recipients = recipients }, ct);
        return true;
    }

    /// <returns>Every recipient's state after the attempt, or null when the message is gone already.</returns>
    private async Task<IReadOnlyList<QueuedRecipient>?> AttemptAsync(QueuedMessage message,
        List<QueuedRecipient> due, DateTimeOffset now, CancellationToken ct)
    {
        BodyCheck.Shape shape;
        try
        {
            await using var body = await _store.OpenBodyAsync(message.Id, ct);
            shape = await BodyCheck.CheckAsync(body, ct);
        }
        catch (FileNotFoundException)
        {
            shape = new BodyCheck.Shape("no stored body", false);
        }
        if (shape.Problem is { } problem)
        {
            _log.LogWarning("Message {Id} refused before sending: its stored body has {Problem}", message.Id, problem);
            var refused = due.Select(r => new RecipientResult(r.Index, Outcome.Permanent,
                $"554 5.6.0 the stored message has {problem} and is not sent")).ToList();
            return Merge(message, await RecordAsync(message, refused, ct));
        }

        var prefix = Encoding.UTF8.GetBytes(ReleaseStamp.Headers(message.Envelope.TraceHeaders, now,
            _options.Anonymity.DatePrecision));
        var outbound = new Outbound(message, prefix, token => _store.OpenBodyAsync(message.Id, token), shape.EndsWithCrlf);

        var groups = _perDomain
            ? due.GroupBy(r => SmtpPath.DomainOf(r.Address)).Select(g => (g.Key, g.ToList())).ToList()
            : [("", due)];

        // The common case, one hop for every recipient and all delivered, removes the message in
        // one write; anything else records each group's outcomes as soon as they are known, so a
        // slow domain does not hold back what the others answered.
        if (groups.Count == 1 && due.Count == message.Recipients.Count)
        {
            var results = await _transport.SendAsync(outbound, groups[0].Item1, due, ct);
            if (results.All(r => r.Outcome == Outcome.Delivered))
            {
                Count(message, results.Select(r => ToOutcome(message, r, now)).ToList());
                await _store.FinishAsync(message.Id, CancellationToken.None);
                return null;
            }
            return Merge(message, await RecordAsync(message, results, ct));
        }

        var outcomes = await Task.WhenAll(groups.Select(async group =>
        {
            var results = await _transport.SendAsync(outbound, group.Item1, group.Item2, ct);
            return await RecordAsync(message, results, ct);
        }));
        return Merge(message, outcomes.SelectMany(o => o).ToList());
    }

    private static List<QueuedRecipient> Merge(QueuedMessage message, IReadOnlyList<RecipientOutcome> outcomes)
    {
        var byIndex = outcomes.ToDictionary(o => o.Index);
        return message.Recipients.Select(r => byIndex.TryGetValue(r.Index, out var o)
            ? r with
            {
                State = o.State,
                Attempts = r.Attempts + 1,
                NextAttempt = o.NextAttempt ?? r.NextAttempt,
                LastError = o.Error,
            }
            : r).ToList();
    }

    private RecipientOutcome ToOutcome(QueuedMessage message, RecipientResult result, DateTimeOffset now)
    {
        var attempts = message.Recipients.First(r => r.Index == result.Index).Attempts + 1;
        switch (result.Outcome)
        {
            case Outcome.Delivered:
                return new(result.Index, RecipientState.Delivered, null, result.Detail);
            case Outcome.Permanent:
                return new(result.Index, RecipientState.Failed, null, result.Detail);
            default:
                // Counted from when the attempt ended: a slow failure must not eat the delay.
                var next = _retry.Next(attempts, message.CreatedAt, now);
                return next is null
                    ? new(result.Index, RecipientState.Failed, null, RetrySchedule.Expired(result.Detail))
                    : new(result.Index, RecipientState.Pending, next, result.Detail);
        }
    }

    private async Task<List<RecipientOutcome>> RecordAsync(QueuedMessage message,
        IReadOnlyList<RecipientResult> results, CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        var outcomes = results.Select(r => ToOutcome(message, r, now)).ToList();
        // Not the stopping token: an outcome learnt from the next hop is worth keeping.
        await _store.RecordAsync(message.Id, outcomes, CancellationToken.None);
        Count(message, outcomes);
        return outcomes;
    }

    private void Count(QueuedMessage message, IReadOnlyList<RecipientOutcome> outcomes)
    {
        var now = _time.GetUtcNow();
        foreach (var outcome in outcomes)
        {
            if (outcome.State == RecipientState.Delivered)
                _metrics?.DeliverySucceeded(now - message.Envelope.ReleaseAt);
            else if (outcome.State == RecipientState.Failed)
                _metrics?.DeliveryFailed();
            else
                _metrics?.DeliveryDeferred();
        }
        _log.LogInformation("Message {Id}: {Delivered} delivered, {Deferred} deferred, {Failed} failed",
            message.Id, outcomes.Count(o => o.State == RecipientState.Delivered),
            outcomes.Count(o => o.State == RecipientState.Pending), outcomes.Count(o => o.State == RecipientState.Failed));
    }

    // Every recipient is final: report the failures (when there is somewhere to report them), then
    // remove the message. A crash in between sends the report again after the restart, never loses it.
    private async Task FinishAsync(QueuedMessage message, CancellationToken ct)
    {
        var failed = message.Recipients.Where(r => r.State == RecipientState.Failed).ToList();
        if (failed.Count > 0 && message.Envelope.NotifyAddress is { } notify)
        {
            await using var incoming = _store.CreateIncoming();
            await using (var body = await _store.OpenBodyAsync(message.Id, ct))
                await DsnBuilder.WriteAsync(incoming.Body, _options.HostName, message, failed, body, ct);
            var dsnId = await _store.CommitAsync(incoming, new QueueEnvelope(
                Sender: "",
                Recipients: [notify],
                NotifyAddress: null,
                TraceHeaders: [],
                ReleaseAt: _time.GetUtcNow(),
                Needs8BitMime: false,
                NeedsSmtpUtf8: notify.Any(c => c >= 0x80)), CancellationToken.None);
            _log.LogInformation("Message {Id}: {Count} recipients failed; report queued as {Dsn}",
                message.Id, failed.Count, dsnId);
        }
        else if (failed.Count > 0)
        {
            _log.LogInformation("Message {Id}: {Count} recipients failed; no notification address, recorded only",
                message.Id, failed.Count);
        }
        await _store.FinishAsync(message.Id, CancellationToken.None);
    }

    public override void Dispose()
    {
        _store.WorkAvailable -= Wake;
        base.Dispose();
    }
}
