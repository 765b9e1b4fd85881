using System.Diagnostics.Metrics;

namespace Sombra.Hosting;

/// <summary>
/// The relay's metrics (System.Diagnostics.Metrics), exported by Metrics:Endpoint. Labels are
/// fixed codes only: never a client, an address or a domain.
/// </summary>
public sealed class SombraMetrics : IDisposable
{
    public const string MeterName = "Sombra";

    private readonly Meter _meter = new(MeterName);
    private readonly Counter<long> _sessions;
    private readonly Counter<long> _accepted;
    private readonly Counter<long> _refused;
    private readonly Counter<long> _deliveries;
    private readonly Histogram<double> _latency;
    private Func<(long Depth, double OldestSeconds)>? _queue;

    public SombraMetrics()
    {
        _sessions = _meter.CreateCounter<long>("sombra_sessions", description: "SMTP sessions opened");
        _accepted = _meter.CreateCounter<long>("sombra_messages_accepted", description: "Messages acknowledged with 250");
        _refused = _meter.CreateCounter<long>("sombra_messages_refused", description: "Messages refused, by reason");
        _deliveries = _meter.CreateCounter<long>("sombra_deliveries",
            description: "Recipient delivery attempts, by outcome (succeeded, deferred, failed)");
        _latency = _meter.CreateHistogram<double>("sombra_delivery_latency", unit: "s",
            description: "Seconds from the end of the mixing delay to successful delivery");
        _meter.CreateObservableGauge("sombra_queue_depth", () => _queue?.Invoke().Depth ?? 0,
            description: "Messages in the queue");
        _meter.CreateObservableGauge("sombra_queue_oldest_age", () => _queue?.Invoke().OldestSeconds ?? 0,
            unit: "s", description: "Age of the oldest queued message");
    }

    public void SessionOpened() => _sessions.Add(1);

    public void MessageAccepted() => _accepted.Add(1);

    /// <param name="reason">A fixed code: "auth", "size", "smuggling", "scrub", "storage", ...</param>
    public void MessageRefused(string reason) => _refused.Add(1, new KeyValuePair<string, object?>("reason", reason));

    public void DeliverySucceeded(TimeSpan sinceReleased)
    {
        _deliveries.Add(1, new KeyValuePair<string, object?>("outcome", "succeeded"));
        _latency.Record(sinceReleased.TotalSeconds);
    }

    public void DeliveryDeferred() => _deliveries.Add(1, new KeyValuePair<string, object?>("outcome", "deferred"));

    public void DeliveryFailed() => _deliveries.Add(1, new KeyValuePair<string, object?>("outcome", "failed"));

    /// <summary>Where the queue gauges read from (the delivery service keeps the figures current).</summary>
    public void ObserveQueue(Func<(long Depth, double OldestSeconds)> queue) => _queue = queue;

    public void Dispose() => _meter.Dispose();
}
