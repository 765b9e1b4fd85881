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
    private readonly IReleasePolicy _policy;
    private readonly SombraOptions _options;
    private readonly RetrySchedule _retry;
    private readonly TimeProvider _time;
    private readonly SombraMetrics? _metrics;
    private readonly ILogger<DeliveryService> _log;
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(
        new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly ConcurrentDictionary<string, Task> _inFlight = new();
    private readonly SemaphoreSlim _slots;
    private readonly bool _perDomain;

    public DeliveryService(IDeliveryQueue store, IDeliveryTransport transport, IReleasePolicy policy,
        SombraOptions options, TimeProvider time, ILogger<DeliveryService> log, SombraMetrics? metrics = null)
    {
        _store = store;
        _transport = transport;
        _policy = policy;
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
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                var now = _time.GetUtcNow();
                var batch = Math.Max(1, _options.Delivery.MaxConnections - _inFlight.Count);
                var due = await _store.FindDueAsync(now, batch, stoppingToken);
                foreach (var message in _policy.Select(due, now))
                {
                    if (_inFlight.ContainsKey(message.Id))
                        continue;
                    await _slots.WaitAsync(stoppingToken);
                    _inFlight[message.Id] = Task.Run(() => RunOne(message.Id, stoppingToken), CancellationToken.None);
                }

                var next = await _store.NextDueAsync(stoppingToken);
                var delay = next is { } n && n > now ? n - now : PollInterval;
                if (delay > PollInterval)
                    delay = PollInterval;
                await WaitForWork(delay, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        await Task.WhenAll(_inFlight.Values);
    }

    private async Task WaitForWork(TimeSpan delay, CancellationToken ct)
    {
        using var timer = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var sleep = Task.Delay(delay, _time, timer.Token);
        var woken = _wake.Reader.WaitToReadAsync(timer.Token).AsTask();
        await Task.WhenAny(sleep, woken);
        timer.Cancel();
        _wake.Reader.TryRead(out _);
        ct.ThrowIfCancellationRequested();
    }

    private async Task RunOne(string id, CancellationToken ct)
    {
        try
        {
            await ProcessAsync(id, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopping: what was not recorded stays pending and is sent again after the restart.
        }
        catch (Exception e)
        {
            // Exception types only: messages may quote a reply that names a recipient.
            _log.LogError("Delivery of {Id} failed unexpectedly ({Error}); it stays queued", id, e.GetType().Name);
        }
        finally
        {
            _inFlight.TryRemove(id, out _);
            _slots.Release();
            Wake();
        }
    }

    internal async Task ProcessAsync(string id, CancellationToken ct)
    {
        var message = await _store.ClaimAsync(id, ct);
        if (message is null)
            return;
        try
        {
            var now = _time.GetUtcNow();
            var due = message.Recipients
                .Where(r => r.State == RecipientState.Pending && r.NextAttempt <= now).ToList();
            if (due.Count > 0)
                await AttemptAsync(message, due, now, ct);

            var after = await _store.GetAsync(id, ct);
            if (after is not null && after.Recipients.All(r => r.State != RecipientState.Pending))
                await FinishAsync(after, ct);
        }
        finally
        {
            _store.Release(id);
        }
    }

    private async Task AttemptAsync(QueuedMessage message, List<QueuedRecipient> due, DateTimeOffset now,
        CancellationToken ct)
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
            await RecordAsync(message, due.Select(r => new RecipientResult(r.Index, Outcome.Permanent,
                $"554 5.6.0 the stored message has {problem} and is not sent")).ToList(), now, ct);
            return;
        }

        var prefix = Encoding.UTF8.GetBytes(ReleaseStamp.Headers(message.Envelope.TraceHeaders, now,
            _options.Anonymity.DatePrecision));
        var outbound = new Outbound(message, prefix, token => _store.OpenBodyAsync(message.Id, token), shape.EndsWithCrlf);
        var groups = _perDomain
            ? due.GroupBy(r => SmtpPath.DomainOf(r.Address)).Select(g => (g.Key, g.ToList())).ToList()
            : [("", due)];

        await Task.WhenAll(groups.Select(async group =>
        {
            var results = await _transport.SendAsync(outbound, group.Item1, group.Item2, ct);
            await RecordAsync(message, results, now, ct);
        }));
    }

    private async Task RecordAsync(QueuedMessage message, IReadOnlyList<RecipientResult> results,
        DateTimeOffset now, CancellationToken ct)
    {
        var attempts = message.Recipients.ToDictionary(r => r.Index, r => r.Attempts);
        var outcomes = new List<RecipientOutcome>();
        foreach (var result in results)
        {
            switch (result.Outcome)
            {
                case Outcome.Delivered:
                    outcomes.Add(new(result.Index, RecipientState.Delivered, null, result.Detail));
                    _metrics?.DeliverySucceeded(now - message.CreatedAt);
                    break;
                case Outcome.Permanent:
                    outcomes.Add(new(result.Index, RecipientState.Failed, null, result.Detail));
                    _metrics?.DeliveryFailed();
                    break;
                default:
                    var next = _retry.Next(attempts.GetValueOrDefault(result.Index) + 1, message.CreatedAt, now);
                    if (next is null)
                    {
                        outcomes.Add(new(result.Index, RecipientState.Failed, null,
                            "4.4.7 gave up after Delivery:MaxQueueLifetime; last reply: " + result.Detail));
                        _metrics?.DeliveryFailed();
                    }
                    else
                    {
                        outcomes.Add(new(result.Index, RecipientState.Pending, next, result.Detail));
                        _metrics?.DeliveryDeferred();
                    }
                    break;
            }
        }
        // Not the stopping token: an outcome learnt from the next hop is worth keeping.
        await _store.RecordAsync(message.Id, outcomes, CancellationToken.None);
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
