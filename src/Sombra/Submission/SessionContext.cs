using System.Net.Security;
using Microsoft.Extensions.Logging;
using Sombra.Anonymity;
using Sombra.Hosting;
using Sombra.Queue;

namespace Sombra.Submission;

/// <summary>What every session shares: settings, the accounts, and the next stages.</summary>
public sealed record SessionContext(
    SombraOptions Options,
    AccountStore Accounts,
    RelayPolicy Policy,
    IAnonymizer Anonymizer,
    IQueueStore Queue,
    SslStreamCertificateContext Certificate,
    ILogger Logger,
    TimeProvider Time,
    AbuseControls Abuse,
    OptOutList OptOut,
    ClientKeys ClientKeys);
