using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using Sombra.Queue;

namespace Sombra.Hosting;

/// <summary>
/// Metrics:Endpoint: the <see cref="SombraMetrics"/> meter in Prometheus text format over HTTP, with
/// OpenTelemetry's stand-alone HttpListener exporter (no web framework needed for one endpoint).
/// </summary>
public static class MetricsEndpoint
{
    public static void Add(IServiceCollection services, SombraOptions options)
    {
        if (options.Metrics.Endpoint is not { } endpoint || !ConfigLoader.TryParseEndpoint(endpoint, out var ip))
            return;
        var host = ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6
            ? $"[{ip.Address}]" : ip.Address.ToString();
        services.AddHostedService(sp => new Exporter(host, ip.Port, sp.GetRequiredService<SombraMetrics>(),
            sp.GetRequiredService<IDeliveryQueue>(), sp.GetRequiredService<TimeProvider>()));
    }

    private sealed class Exporter(string host, int port, SombraMetrics metrics, IDeliveryQueue store, TimeProvider time)
        : IHostedService
    {
        private MeterProvider? _provider;

        public Task StartAsync(CancellationToken cancellationToken)
        {
            metrics.ObserveQueue(() =>
            {
                var (depth, oldest) = store.Depth();
                return (depth, oldest is { } t ? Math.Max(0, (time.GetUtcNow() - t).TotalSeconds) : 0);
            });
            _provider = Sdk.CreateMeterProviderBuilder()
                .AddMeter(SombraMetrics.MeterName)
                .AddPrometheusHttpListener(o =>
                {
                    o.Host = host;
                    o.Port = port;
                    o.ScrapeEndpointPath = "/metrics";
                    // No target_info: it would carry the service's resource attributes, host name among them.
                    o.TargetInfoEnabled = false;
                })
                .Build();
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken)
        {
            _provider?.Dispose();
            return Task.CompletedTask;
        }
    }
}
