using Microsoft.Extensions.DependencyInjection;
using Sombra.Anonymity;
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
        services.AddSingleton<ClientKeys>();
        services.AddSingleton<AbuseControls>();
        services.AddSingleton(new OptOutList(options.DataPath));
        services.AddSingleton<SubmissionServer>();
        services.AddHostedService(sp => sp.GetRequiredService<SubmissionServer>());
        services.AddSingleton<IAnonymizer>(new Anonymizer(options, AnonymityKeys.ForOptions(options)));
    }
}
