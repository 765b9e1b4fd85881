using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Sombra.Delivery;
using Sombra.Queue;
using Sombra.Submission;

namespace Sombra.Hosting;

/// <summary>Wires the stages together: submission, anonymity, queue, delivery.</summary>
public static class RelayServices
{
    public static void Add(IServiceCollection services, SombraOptions options)
    {
        services.AddSingleton(options);
        services.AddSingleton(new AccountStore(options.DataPath));
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<SombraMetrics>();

        // The queue recovers at start-up, before any hosted service that submits or delivers runs:
        // hosted services start in registration order, so keep this one first.
        services.AddSingleton<IQueueStore>(sp => new SqliteQueueStore(options.DataPath, sp.GetRequiredService<TimeProvider>()));
        services.AddHostedService<QueueStartup>();

        services.AddSingleton<IReleasePolicy, ReleaseWhenDue>();
        services.AddSingleton<IDeliveryTransport>(_ => options.Delivery.Directory is { } directory
            ? new DirectoryTransport(Path.GetFullPath(directory))
            : new SmtpTransport(options));
        services.AddSingleton<DeliveryService>();
        services.AddHostedService(sp => sp.GetRequiredService<DeliveryService>());
    }

    private sealed class QueueStartup(IQueueStore store) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => store.InitializeAsync(cancellationToken);
        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
