using System.Net;
using System.Net.Sockets;
using System.Text;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;
using Sombra.Hosting;
using Sombra.Queue;

namespace Sombra.Delivery;

/// <summary>
/// Outbound SMTP with MailKit: through Delivery:Smarthost, or directly to the recipient domain's
/// MX hosts in preference order. EHLO names the relay by HostName, never by the machine's name.
/// </summary>
public sealed class SmtpTransport : IDeliveryTransport
{
    private readonly SombraOptions _options;
    private readonly DeliveryOptions _delivery;
    private readonly MxResolver _mx;
    private readonly ConnectionPool _pool;
    private readonly string? _smarthost;
    private readonly int _smarthostPort;

    public SmtpTransport(SombraOptions options)
    {
        _options = options;
        _delivery = options.Delivery;
        _mx = new MxResolver(_delivery.DnsServers);
        _pool = new ConnectionPool(_delivery.MaxConnections, _delivery.MaxConnectionsPerDestination);
        if (_delivery.Smarthost is { } smarthost && ConfigLoader.TryParseHostPort(smarthost, out var host, out var port))
            (_smarthost, _smarthostPort) = (host, port);
    }

    private sealed record Route(string Host, IReadOnlyList<IPAddress>? Addresses, int Port, SecureSocketOptions Tls,
        bool Opportunistic, bool Authenticate);

    public async Task<IReadOnlyList<RecipientResult>> SendAsync(Outbound outbound, string domain,
        IReadOnlyList<QueuedRecipient> recipients, CancellationToken cancellationToken)
    {
        List<Route> routes;
        if (_smarthost is not null)
        {
            var tls = ConfigLoader.ParseTls(_delivery.SmarthostTls) switch
            {
                TlsMode.None => SecureSocketOptions.None,
                TlsMode.Implicit => SecureSocketOptions.SslOnConnect,
                _ => SecureSocketOptions.StartTls,
            };
            routes = [new Route(_smarthost, null, _smarthostPort, tls, false, _delivery.SmarthostUser is not null)];
        }
        else
        {
            var resolved = await _mx.ResolveAsync(domain, cancellationToken);
            if (resolved.Hosts.Count == 0)
                return All(recipients, resolved.Failure, resolved.Detail!);
            var (tls, opportunistic) = _delivery.Tls switch
            {
                "none" => (SecureSocketOptions.None, false),
                "required" => (SecureSocketOptions.StartTls, false),
                _ => (SecureSocketOptions.StartTlsWhenAvailable, true),
            };
            routes = resolved.Hosts.Select(h => new Route(h.Name, h.Addresses, _delivery.Port, tls, opportunistic, false))
                .ToList();
        }

        // Try hosts (and their addresses) in order until one holds a conversation; what that host
        // answers is the result of this attempt (RFC 5321 section 5.1).
        var lastError = "451 4.4.1 no next hop could be reached";
        foreach (var route in routes)
        {
            foreach (var address in route.Addresses?.Select(a => (IPAddress?)a) ?? [null])
            {
                // Per host, not per address: Delivery:MaxConnectionsPerDestination limits what one
                // receiving system gets, however many addresses it has, and an idle connection to
                // any of them serves the next message.
                var key = $"{route.Host.ToLowerInvariant()}|{route.Port}";

                // A connection kept from an earlier message may have been closed by the other side
                // while idle; that says nothing about this message, so it goes again at once on
                // another connection, up to one try more than the idle ones there can be.
                for (var tries = 0; tries <= _delivery.MaxConnectionsPerDestination; tries++)
                {
                    ConnectionPool.Lease lease;
                    try
                    {
                        lease = await _pool.AcquireAsync(key, ct => ConnectAsync(route, address, ct), cancellationToken);
                    }
                    catch (Exception e) when (!cancellationToken.IsCancellationRequested && IsConnectionFailure(e))
                    {
                        lastError = Describe(e, "could not connect");
                        break;
                    }

                    var keep = false;
                    bool stale;
                    IReadOnlyList<RecipientResult> results;
                    try
                    {
                        (results, keep, stale) = await TransactAsync(lease.Client, outbound, recipients, cancellationToken);
                    }
                    finally
                    {
                        lease.Return(keep);
                    }
                    if (!(stale && lease.Reused))
                        return results;
                    lastError = "451 4.4.2 the connection failed";
                }
            }
        }
        return All(recipients, Outcome.Temporary, lastError);
    }

    private OutboundSmtpClient NewClient(Route route)
    {
        var client = new OutboundSmtpClient
        {
            LocalDomain = _options.HostName,
            Timeout = (int)Math.Min(int.MaxValue, _delivery.CommandTimeout.TotalMilliseconds),
            CheckCertificateRevocation = false,
        };
        // MX delivery is opportunistic security (RFC 7435): encryption against passive observers,
        // without authentication, as there is no DANE or MTA-STS here. A smarthost is named by the
        // operator, so its certificate is checked.
        if (route.Addresses is not null)
            client.ServerCertificateValidationCallback = (_, _, _, _) => true;
        return client;
    }

    private async Task<OutboundSmtpClient> ConnectAsync(Route route, IPAddress? address, CancellationToken ct)
    {
        var client = NewClient(route);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(_delivery.ConnectTimeout);
            try
            {
                await ConnectOnce(client, route, address, route.Tls, timeout.Token);
            }
            catch (Exception e) when (route.Opportunistic && e is SslHandshakeException or SmtpCommandException)
            {
                // A broken or refused TLS offer (a failed handshake, 454 to STARTTLS) must not stop
                // mail that plain SMTP would deliver (RFC 7435 section 3).
                client.Dispose();
                client = NewClient(route);
                await ConnectOnce(client, route, address, SecureSocketOptions.None, timeout.Token);
            }
            if (route.Authenticate)
                await client.AuthenticateAsync(_delivery.SmarthostUser!, _delivery.SmarthostPassword!, timeout.Token);
            return client;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    private static async Task ConnectOnce(OutboundSmtpClient client, Route route, IPAddress? address,
        SecureSocketOptions tls, CancellationToken ct)
    {
        // The socket is ours so that Nagle's algorithm is off: MailKit writes the end of DATA as
        // a small segment of its own, which Nagle holds until the peer's delayed ACK (40 ms on
        // Linux), capping each connection at about 25 messages a second.
        var socket = address is null
            ? new Socket(SocketType.Stream, ProtocolType.Tcp)
            : new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        socket.NoDelay = true;
        try
        {
            if (address is null)
                await socket.ConnectAsync(new DnsEndPoint(route.Host, route.Port), ct);
            else
                await socket.ConnectAsync(new IPEndPoint(address, route.Port), ct);
            await client.ConnectAsync(socket, route.Host, route.Port, tls, ct);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <returns>
    /// The results; whether the connection may be kept; and whether it broke before any
    /// recipient got an answer of its own (for a reused connection: stale, try another).
    /// </returns>
    private async Task<(IReadOnlyList<RecipientResult>, bool Keep, bool Stale)> TransactAsync(OutboundSmtpClient client,
        Outbound outbound, IReadOnlyList<QueuedRecipient> recipients, CancellationToken ct)
    {
        var envelope = outbound.Message.Envelope;
        var capabilities = client.Capabilities;

        // No silent re-encoding: a hop that cannot carry the message as stored gets nothing.
        if (envelope.Needs8BitMime && !capabilities.HasFlag(SmtpCapabilities.EightBitMime))
            return (All(recipients, Outcome.Permanent,
                "554 5.6.3 the next hop lacks 8BITMIME, which this message needs (RFC 6152)"), true, false);
        var international = envelope.NeedsSmtpUtf8 || !Ascii(envelope.Sender) || recipients.Any(r => !Ascii(r.Address));
        if (international && !capabilities.HasFlag(SmtpCapabilities.UTF8))
            return (All(recipients, Outcome.Permanent,
                "553 5.6.7 the next hop lacks SMTPUTF8, which this message needs (RFC 6531)"), true, false);

        var mailboxes = recipients.Select(r => new MailboxAddress("", r.Address)).ToList();
        // MailKit adds SMTPUTF8 to MAIL FROM only for non-ASCII addresses or with
        // FormatOptions.International, and the latter rewrites headers. A route domain that is not
        // ASCII marks the sender international without appearing in the command (MailKit writes
        // the bare address), so a message with UTF-8 headers gets its SMTPUTF8 (RFC 6531 section 3.4).
        var sender = international && Ascii(envelope.Sender)
            ? new MailboxAddress("", ["\u00fc.invalid"], envelope.Sender)
            : new MailboxAddress("", envelope.Sender);
        var format = FormatOptions.Default.Clone();
        format.International = false;

        await using var body = await outbound.OpenBody(ct);
        var (message, size) = await OutboundMessage.CreateAsync(outbound.Prefix, body, outbound.EndsWithCrlf,
            envelope.Needs8BitMime, ct);
        if (client.MaxSize > 0 && size > client.MaxSize)
            return (All(recipients, Outcome.Permanent, "552 5.3.4 the message is larger than the next hop accepts"), true,
                false);
        client.MessageSize = size;

        client.Refused.Clear();
        string? failure = null;
        var failureOutcome = Outcome.Temporary;
        var keep = true;
        var broken = false;
        try
        {
            var reply = await client.SendAsync(format, message, sender, mailboxes, ct);
            return (Results(client, recipients, mailboxes, Outcome.Delivered, "250 " + Clean(reply)), true, false);
        }
        catch (SmtpCommandException e) when (e.ErrorCode == SmtpErrorCode.MessageNotAccepted && client.Refused.Count == mailboxes.Count)
        {
            // Every recipient refused; each has its own reply.
        }
        catch (SmtpCommandException e)
        {
            failure = $"{(int)e.StatusCode} {Clean(e.Message)}";
            failureOutcome = (int)e.StatusCode >= 500 ? Outcome.Permanent : Outcome.Temporary;
        }
        catch (ServiceNotAuthenticatedException)
        {
            failure = "530 5.7.0 the next hop asks for authentication";
        }
        catch (Exception e) when (!ct.IsCancellationRequested && IsConnectionFailure(e))
        {
            failure = Describe(e, "the connection failed");
            keep = false;
            broken = e is not SmtpCommandException;
        }
        return (Results(client, recipients, mailboxes, failureOutcome, failure), keep && client.IsConnected,
            broken && client.Refused.Count == 0);
    }

    private static List<RecipientResult> Results(OutboundSmtpClient client, IReadOnlyList<QueuedRecipient> recipients,
        List<MailboxAddress> mailboxes, Outcome rest, string? restDetail)
    {
        var results = new List<RecipientResult>();
        for (var i = 0; i < recipients.Count; i++)
        {
            if (client.Refused.TryGetValue(mailboxes[i], out var refusal))
                results.Add(new RecipientResult(recipients[i].Index,
                    (int)refusal.StatusCode >= 500 ? Outcome.Permanent : Outcome.Temporary,
                    $"{(int)refusal.StatusCode} {Clean(refusal.Response)}"));
            else
                results.Add(new RecipientResult(recipients[i].Index, rest, restDetail ?? "451 4.4.0 no reply"));
        }
        return results;
    }

    private static List<RecipientResult> All(IReadOnlyList<QueuedRecipient> recipients, Outcome outcome, string detail) =>
        recipients.Select(r => new RecipientResult(r.Index, outcome, detail)).ToList();

    private static bool IsConnectionFailure(Exception e) =>
        e is IOException or SocketException or SmtpProtocolException or SmtpCommandException or SslHandshakeException
            or OperationCanceledException or TimeoutException or NotSupportedException or AuthenticationException
            or ServiceNotConnectedException or InvalidOperationException;

    private static string Describe(Exception e, string what) => e switch
    {
        SmtpCommandException c => $"{(int)c.StatusCode} {Clean(c.Message)}",
        OperationCanceledException or TimeoutException => $"451 4.4.2 {what}: timed out",
        NotSupportedException => "451 4.7.0 the next hop offers no STARTTLS, which Delivery:Tls requires",
        SslHandshakeException => "451 4.7.0 TLS handshake failed",
        AuthenticationException => "451 4.7.0 authentication at the next hop failed",
        SocketException s => $"451 4.4.1 {what}: {s.SocketErrorCode}",
        _ => $"451 4.4.2 {what}",
    };

    private static bool Ascii(string s) => s.All(c => c < 0x80);

    /// <summary>A reply as one short printable line, for the queue record, logs and DSNs.</summary>
    internal static string Clean(string text)
    {
        var builder = new StringBuilder(Math.Min(text.Length, 300));
        foreach (var c in text)
        {
            if (builder.Length >= 300)
                break;
            builder.Append(char.IsControl(c) ? ' ' : c);
        }
        return builder.ToString().Trim();
    }

    public ValueTask DisposeAsync() => _pool.DisposeAsync();
}
