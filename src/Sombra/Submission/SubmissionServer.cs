using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Sombra.Anonymity;
using Sombra.Hosting;
using Sombra.Queue;

namespace Sombra.Submission;

/// <summary>
/// Listens on every configured endpoint, enforces the connection caps, and runs a session per
/// connection. On shutdown it stops accepting, lets sessions in a transaction finish (for up to
/// the host's shutdown timeout), and ends idle ones at once with 421.
/// </summary>
public sealed class SubmissionServer(
    SombraOptions options,
    AccountStore accounts,
    IAnonymizer anonymizer,
    IQueueWriter queue,
    ClientKeys clientKeys,
    AbuseControls abuse,
    OptOutList optOut,
    SombraMetrics metrics,
    ILogger<SubmissionServer> logger,
    TimeProvider time) : IHostedService, IAsyncDisposable
{
    private readonly List<(Socket Socket, TlsMode Tls)> _listeners = [];
    private readonly ConcurrentDictionary<SmtpSession, Task> _sessions = new();
    private readonly ConcurrentDictionary<string, int> _perClient = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly CancellationTokenSource _abort = new();
    private readonly List<Task> _acceptLoops = [];
    private SessionContext? _context;
    private int _connections;

    /// <summary>The addresses actually bound (port 0 in the configuration picks a free one).</summary>
    public IReadOnlyList<IPEndPoint> LocalEndpoints =>
        _listeners.Select(l => (IPEndPoint)l.Socket.LocalEndPoint!).ToArray();

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var certificate = TlsCertificate.Load(options, logger);
        _context = new SessionContext(options, accounts, new RelayPolicy(options.Submission.TrustedNetworks),
            anonymizer, queue, SslStreamCertificateContext.Create(certificate, null), logger, time,
            abuse, optOut, clientKeys, metrics);

        foreach (var endpoint in options.Submission.Endpoints)
        {
            ConfigLoader.TryParseEndpoint(endpoint.Address, out var address);
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                if (address.AddressFamily == AddressFamily.InterNetworkV6)
                    socket.DualMode = address.Equals(IPAddress.IPv6Any);
                AllowRebindOverTimeWait(socket);
                socket.Bind(address);
                socket.Listen(4096);
            }
            catch (SocketException e)
            {
                // The operator's to fix (most often another relay on the port): one clear line.
                socket.Dispose();
                throw new IOException($"cannot listen on {endpoint.Address}: {e.Message}", e);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
            _listeners.Add((socket, ConfigLoader.ParseTls(endpoint.Tls)));
            logger.LogInformation("listening on {Endpoint} ({Tls})", socket.LocalEndPoint, endpoint.Tls);
        }
        foreach (var (socket, tls) in _listeners)
            _acceptLoops.Add(AcceptLoopAsync(socket, tls));
    }

    /// <summary>
    /// Plain SO_REUSEADDR, so that a restarted relay can bind while connections of the last one
    /// linger in TIME_WAIT. Not <see cref="SocketOptionName.ReuseAddress"/>: on Linux .NET sets
    /// SO_REUSEPORT with it, and then a second relay binds the same port and silently takes half
    /// the connections. Linux refuses a second listener even with SO_REUSEADDR (socket(7)).
    /// Elsewhere the platform default applies.
    /// </summary>
    private static void AllowRebindOverTimeWait(Socket socket)
    {
        const int solSocket = 1, soReuseAddr = 2; // <asm-generic/socket.h>
        if (OperatingSystem.IsLinux())
            socket.SetRawSocketOption(solSocket, soReuseAddr, BitConverter.GetBytes(1));
    }

    private async Task AcceptLoopAsync(Socket listener, TlsMode tls)
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync(_stopping.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (SocketException e) when (!_stopping.IsCancellationRequested)
            {
                // Passing trouble (a client gone before accept, a burst at the fd limit): pause
                // briefly so that a persistent error cannot spin, then go on.
                logger.LogDebug("accept failed: {Error}", e.SocketErrorCode);
                await Task.Delay(50);
                continue;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            _ = HandleAsync(socket, tls);
        }
    }

    private async Task HandleAsync(Socket socket, TlsMode tls)
    {
        socket.NoDelay = true;
        metrics.SessionOpened();
        var address = ((IPEndPoint)socket.RemoteEndPoint!).Address;
        var client = clientKeys.For(address);
        var total = Interlocked.Increment(ref _connections);
        var mine = _perClient.AddOrUpdate(client, 1, (_, n) => n + 1);
        try
        {
            if (total > options.Submission.MaxConnections || mine > options.Submission.MaxConnectionsPerClient)
            {
                metrics.MessageRefused("connections");
                await RefuseAsync(socket, tls, "Too many connections, try again later", "over the connection limit");
                return;
            }
            if (abuse.AuthBlocked(address))
            {
                metrics.MessageRefused("auth-blocked");
                await RefuseAsync(socket, tls, "Too many authentication failures, try again later", "auth-blocked");
                return;
            }
            var session = new SmtpSession(_context!, socket, tls, _stopping.Token, _abort.Token);
            await using (session)
            {
                var run = session.RunAsync();
                _sessions[session] = run;
                try
                {
                    await run;
                }
                finally
                {
                    _sessions.TryRemove(session, out _);
                }
            }
        }
        finally
        {
            Interlocked.Decrement(ref _connections);
            if (_perClient.AddOrUpdate(client, 0, (_, n) => n - 1) <= 0)
                _perClient.TryRemove(new KeyValuePair<string, int>(client, 0));
        }
    }

    /// <summary>
    /// Answers 421 at connect and closes. On an implicit-TLS endpoint the client expects a
    /// handshake first and could not read plain text, and a handshake would spend our CPU on a
    /// client we are refusing, so the connection is just closed.
    /// </summary>
    private async Task RefuseAsync(Socket socket, TlsMode tls, string text, string reason)
    {
        try
        {
            if (tls == TlsMode.Implicit)
                return;
            var bytes = Encoding.ASCII.GetBytes($"421 4.7.0 {options.HostName} {text}\r\n");
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await socket.SendAsync(bytes, SocketFlags.None, cts.Token);
            socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
        finally
        {
            socket.Dispose();
            logger.LogInformation("connection refused: {Reason}", reason);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _stopping.Cancel();
        foreach (var (socket, _) in _listeners)
            socket.Dispose();
        await Task.WhenAll(_acceptLoops);

        // Sessions mid-transaction may finish until the host's shutdown timeout; then they end.
        try
        {
            await Task.WhenAll(_sessions.Values).WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            logger.LogWarning("shutdown timeout: ending {Count} open session(s)", _sessions.Count);
            _abort.Cancel();
            await Task.WhenAll(_sessions.Values).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    public ValueTask DisposeAsync()
    {
        foreach (var (socket, _) in _listeners)
            socket.Dispose();
        _stopping.Dispose();
        _abort.Dispose();
        return ValueTask.CompletedTask;
    }
}
