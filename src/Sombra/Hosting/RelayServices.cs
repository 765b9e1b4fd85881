using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Sombra.Anonymity;
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
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<SombraMetrics>();

        // The queue recovers at start-up before anything submits or delivers: hosted services
        // start in registration order, so this one comes before the server and delivery.
        services.AddSingleton<SqliteQueueStore>(sp =>
            new SqliteQueueStore(options.DataPath, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<IDeliveryQueue>(sp => sp.GetRequiredService<SqliteQueueStore>());
        services.AddSingleton<IQueueStore>(sp => sp.GetRequiredService<SqliteQueueStore>());
        services.AddSingleton<IQueueWriter>(sp => sp.GetRequiredService<SqliteQueueStore>());
        services.AddHostedService<QueueStartup>();

        services.AddSingleton<IAnonymizer>(new Anonymizer(options, AnonymityKeys.ForOptions(options)));

        services.AddSingleton(new AccountStore(options.DataPath));
        services.AddSingleton<ClientKeys>();
        services.AddSingleton<AbuseControls>();
        services.AddSingleton(new OptOutList(options.DataPath));
        services.AddSingleton<SubmissionServer>();
        services.AddHostedService(sp => sp.GetRequiredService<SubmissionServer>());

        if (options.Mixing.Pool)
            services.AddSingleton<PoolMix>();
        services.AddSingleton<IDeliveryTransport>(_ => options.Delivery.Directory is { } directory
            ? new DirectoryTransport(Path.GetFullPath(directory))
            : new SmtpTransport(options));
        services.AddSingleton<DeliveryService>();
        services.AddHostedService(sp => sp.GetRequiredService<DeliveryService>());
        MetricsEndpoint.Add(services, options);
    }

    private sealed class QueueStartup(IQueueStore store) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => store.InitializeAsync(cancellationToken);
        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
