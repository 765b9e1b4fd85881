using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Sombra.Anonymity;
using Sombra.Hosting;
using Sombra.Queue;

namespace Sombra.Submission;

/// <summary>
/// One SMTP submission session (RFC 5321, with RFC 3207 STARTTLS, RFC 4954 AUTH, RFC 2920
/// PIPELINING, RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 6531 SMTPUTF8, RFC 2034/3463 enhanced
/// status codes). The verbs are methods of their own names. What the session learns about the
/// client (its address, its HELO name) lives in this object only and is handed to the
/// anonymizer; it is never logged.
/// </summary>
public sealed partial class SmtpSession : IAsyncDisposable
{
    /// <summary>
    /// RFC 5321 section 4.5.3.1.4: 512 octets with the CRLF; extensions may raise it (RFC 1869
    /// allows 2048 for MAIL/RCPT).
    /// </summary>
    public const int MaxCommandLength = 512;
    public const int MaxExtendedCommandLength = 2048;

    private readonly SessionContext _context;
    private readonly SombraOptions _options;
    private readonly Socket _socket;
    private readonly TlsMode _endpointTls;
    private readonly IPAddress _client;
    private readonly ILogger _logger;
    private readonly CancellationToken _draining;
    private readonly CancellationTokenSource _timeout;
    private readonly CommandLineReader _lines = new(MaxExtendedCommandLength);

    private Stream _stream;
    private PipeReader _reader;
    private PipeWriter _writer;
    private bool _needMore;

    // Session state, reset by STARTTLS (RFC 3207 section 4.2).
    private bool _tls;
    private string? _helo;
    private bool _esmtp;
    private string? _account;

    // Transaction state, reset by RSET, EHLO, HELO and the end of DATA.
    private bool _inTransaction;
    private bool _smtpUtf8;
    private readonly List<string> _recipients = [];
    private AbuseControls.Reservation? _reservation;

    /// <summary>DATA has begun and its terminator is not yet read: the stream is mid-message.</summary>
    private bool _dataUnterminated;

    private int _badCommands;
    private int _accepted;
    private int _refused;
    private bool _quit;

    public string Id { get; } = Convert.ToHexString(RandomNumberGenerator.GetBytes(5)).ToLowerInvariant();

    public SmtpSession(SessionContext context, Socket socket, TlsMode endpointTls, CancellationToken draining,
        CancellationToken abort)
    {
        _context = context;
        _options = context.Options;
        _socket = socket;
        _endpointTls = endpointTls;
        _client = ((IPEndPoint)socket.RemoteEndPoint!).Address;
        _logger = context.Logger;
        _draining = draining;
        _timeout = CancellationTokenSource.CreateLinkedTokenSource(abort);
        _stream = new NetworkStream(socket, ownsSocket: true);
        (_reader, _writer) = Transport(_stream);
    }

    private bool Authenticated => _account is not null;
    private bool MayRelay => Authenticated || _context.Policy.IsTrusted(_client);
    /// <summary>
    /// AUTH is offered only under TLS (RFC 4954 section 4 leaves it to policy; a password in
    /// the clear is no policy), and not at all when RequireAuthentication is off: then only
    /// TrustedNetworks may relay.
    /// </summary>
    private bool AuthAllowed => _tls && _options.Submission.RequireAuthentication;

    private static (PipeReader, PipeWriter) Transport(Stream stream) => (
        PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 4096, minimumReadSize: 1024, leaveOpen: true)),
        PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true)));

    public async Task RunAsync()
    {
        var outcome = "quit";
        try
        {
            _logger.LogDebug("session {Session} opened", Id);
            if (_endpointTls == TlsMode.Implicit && !await StartTlsAsync())
            {
                outcome = "tls-failed";
                return;
            }

            await WriteAsync($"220 {_options.HostName} {_options.Submission.Greeting}");
            outcome = await CommandLoopAsync();
        }
        catch (OperationCanceledException) when (_timeout.IsCancellationRequested)
        {
            outcome = "timeout";
            await TryWriteAsync(_draining.IsCancellationRequested
                ? "421 4.3.2 Service shutting down, closing connection"
                : "421 4.4.2 Timeout, closing connection");
        }
        catch (TransportException e)
        {
            // The client went away or broke the stream; nothing to answer.
            outcome = "disconnected";
            _logger.LogDebug("session {Session} transport ended: {Error}", Id,
                e.InnerException!.GetType().Name);
        }
        catch (Exception e)
        {
            // A fault of ours outside any command (a fault inside one is answered 451 in
            // DispatchAsync): this connection ends, the server goes on. The exception's text may
            // quote client input, so only its type is logged.
            outcome = "fault";
            _logger.LogError("session {Session} failed: {Error}", Id, e.GetType().FullName);
            await TryWriteAsync("421 4.3.0 Internal error, closing connection");
        }
        finally
        {
            _logger.LogInformation(
                "session {Session} closed ({Outcome}): {Accepted} accepted, {Refused} refused",
                Id, outcome, _accepted, _refused);
        }
    }

    private async Task<string> CommandLoopAsync()
    {
        while (!_quit)
        {
            var (status, line) = await ReadCommandAsync();
            switch (status)
            {
                case null:
                    return "disconnected";
                case CommandLineReader.Status.TooLong:
                    await BadAsync("500 5.5.2 Line too long");
                    break;
                case CommandLineReader.Status.Malformed:
                    await BadAsync("500 5.5.2 Bare CR, bare LF or NUL in command");
                    break;
                case CommandLineReader.Status.NotUtf8:
                    // Only UTF-8 may stand for non-ASCII (RFC 6531 section 3.3); bad bytes name
                    // no mailbox, and in any other command they are a syntax error.
                    await BadAsync(line.StartsWith("MAIL ", StringComparison.OrdinalIgnoreCase)
                        || line.StartsWith("RCPT ", StringComparison.OrdinalIgnoreCase)
                            ? "553 5.6.7 Address is not valid UTF-8"
                            : "500 5.5.2 Command is not valid UTF-8");
                    break;
                default:
                    await DispatchAsync(line);
                    break;
            }
            if (_badCommands >= _options.Submission.MaxBadCommands)
                return "errors";
        }
        return "quit";
    }

    private async Task DispatchAsync(string line)
    {
        var space = line.IndexOf(' ');
        var verb = (space < 0 ? line : line[..space]).ToUpperInvariant();
        var argument = space < 0 ? "" : line[(space + 1)..];

        // Only MAIL and RCPT may carry the longer extended parameters (RFC 1869 section 4.1.2).
        var octets = Encoding.UTF8.GetByteCount(line) + 2; // with its CRLF
        if (octets > MaxCommandLength && verb is not ("MAIL" or "RCPT" or "AUTH"))
        {
            await BadAsync("500 5.5.2 Line too long");
            return;
        }

        try
        {
            await RunVerbAsync(verb, argument);
        }
        catch (Exception e) when (e is not TransportException
            && !(e is OperationCanceledException && _timeout.IsCancellationRequested))
        {
            await FaultAsync(verb, e);
        }
    }

    /// <summary>
    /// A fault of ours inside a command (a broken data file, an exception in a stage) is passing
    /// trouble: 451 4.3.0, never 5xx, and the session goes on. The exception's text may quote
    /// client input, so only its type is logged.
    /// </summary>
    private async Task FaultAsync(string verb, Exception e)
    {
        _logger.LogError("session {Session} command failed: {Error}", Id, e.GetType().FullName);
        if (_dataUnterminated)
        {
            // The rest of the message is still coming and would be read as commands.
            _quit = true;
            await WriteAsync("421 4.3.0 Internal error, closing connection");
            return;
        }
        if (verb == "DATA")
        {
            _refused++;
            _context.Metrics.MessageRefused("internal");
        }

        // A failed RCPT refuses only that recipient (RFC 5321 section 3.3). Ending the
        // transaction would turn the client's pipelined RCPTs and DATA into 503s: permanent
        // answers to passing trouble. Every other command leaves no transaction to keep.
        if (verb != "RCPT")
            ResetTransaction();
        await ReplyAsync("451 4.3.0 Temporary failure, try again later");
    }

    private async Task RunVerbAsync(string verb, string argument)
    {
        switch (verb)
        {
            case "EHLO": await Ehlo(argument); break;
            case "HELO": await Helo(argument); break;
            case "MAIL": await Mail(argument); break;
            case "RCPT": await Rcpt(argument); break;
            case "DATA": await Data(argument); break;
            case "RSET": await Rset(argument); break;
            case "NOOP": await ReplyAsync("250 2.0.0 OK"); break;
            case "QUIT": await Quit(); break;
            case "VRFY": await ReplyAsync("252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery"); break;
            case "HELP": await ReplyAsync("214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS AUTH"); break;
            case "STARTTLS": await StartTls(argument); break;
            case "AUTH": await Auth(argument); break;
            case "EXPN" or "TURN" or "ETRN" or "ATRN" or "BDAT":
                await BadAsync("502 5.5.1 Command not implemented");
                break;
            case "GET" or "POST" or "HEAD" or "PUT" or "CONNECT" or "OPTIONS":
                // A web client or a cross-protocol attack; nothing good comes of talking on.
                await WriteAsync("421 4.7.0 This is an SMTP server, closing connection");
                _quit = true;
                break;
            default:
                await BadAsync("500 5.5.1 Command unrecognized");
                break;
        }
    }

    private async Task Ehlo(string argument)
    {
        if (!IsHeloName(argument))
        {
            await BadAsync("501 5.5.4 EHLO needs a domain or address literal");
            return;
        }
        ResetTransaction();
        _helo = argument;
        _esmtp = true;

        var lines = new List<string>
        {
            _options.HostName,
            "PIPELINING",
            $"SIZE {_options.Submission.MaxMessageSize}",
            "8BITMIME",
            "SMTPUTF8",
            "ENHANCEDSTATUSCODES",
        };
        if (_endpointTls == TlsMode.StartTls && !_tls)
            lines.Add("STARTTLS");
        if (AuthAllowed && !Authenticated)
            lines.Add("AUTH PLAIN LOGIN");
        var text = new StringBuilder();
        for (var i = 0; i < lines.Count; i++)
            text.Append("250").Append(i == lines.Count - 1 ? ' ' : '-').Append(lines[i]).Append("\r\n");
        await ReplyRawAsync(text.ToString(), good: true);
    }

    private async Task Helo(string argument)
    {
        if (!IsHeloName(argument))
        {
            await BadAsync("501 5.5.4 HELO needs a domain");
            return;
        }
        ResetTransaction();
        _helo = argument;
        _esmtp = false;
        await ReplyAsync($"250 {_options.HostName}");
    }

    // Clients send all sorts of names here (bare words, "[10.0.0.2]", Windows machine names);
    // the name is only ever handed to the anonymizer, so accept any single printable token.
    private static bool IsHeloName(string argument) =>
        argument.Length is > 0 and <= 255 && argument.All(c => c > ' ' && c != 0x7f);

    private async Task Mail(string argument)
    {
        if (_helo is null)
        {
            await BadAsync("503 5.5.1 Send EHLO or HELO first");
            return;
        }
        if (_inTransaction)
        {
            await BadAsync("503 5.5.1 Nested MAIL command");
            return;
        }
        if (!TryPathArgument(argument, "FROM:", out var path, out var parameters))
        {
            await BadAsync("501 5.5.4 Syntax: MAIL FROM:<address>");
            return;
        }
        if (!MayRelay)
        {
            _context.Metrics.MessageRefused("relay");
            await ReplyAsync("530 5.7.0 Authentication required");
            return;
        }

        var smtpUtf8 = false;
        foreach (var parameter in parameters)
        {
            var (key, value) = SplitParameter(parameter);
            switch (key)
            {
                case "SIZE" when _esmtp && long.TryParse(value, out var size) && size >= 0:
                    if (size > _options.Submission.MaxMessageSize)
                    {
                        await ReplyAsync($"552 5.3.4 Message size exceeds the limit of {_options.Submission.MaxMessageSize} octets");
                        return;
                    }
                    break;
                case "BODY" when _esmtp && value is "7BIT" or "8BITMIME":
                    break;
                case "SMTPUTF8" when _esmtp && value is null:
                    smtpUtf8 = true;
                    break;
                case "AUTH" when _esmtp && value is not null:
                    // RFC 4954 section 5: the submitter's claimed identity; Sombra drops it.
                    break;
                default:
                    await BadAsync("555 5.5.4 Unsupported MAIL parameter");
                    return;
            }
        }

        var parsed = SmtpPath.ParsePath(path, smtpUtf8, allowNull: true);
        if (!parsed.Ok)
        {
            await BadAsync(parsed.Error!);
            return;
        }

        // Taken now and given back if no message comes of it (ResetTransaction).
        if (!_context.Abuse.TryReserveMessage(_client, _account, out var reservation))
        {
            _context.Metrics.MessageRefused("rate");
            await ReplyAsync("450 4.7.1 Message rate limit reached, try again later");
            return;
        }

        // The reverse path is checked and forgotten: the message leaves with the anonymous
        // sender, and a bounce goes to the account's notification address, never back here.
        _reservation = reservation;
        _inTransaction = true;
        _smtpUtf8 = smtpUtf8;
        await ReplyAsync("250 2.1.0 Sender OK");
    }

    private async Task Rcpt(string argument)
    {
        if (!_inTransaction)
        {
            await BadAsync("503 5.5.1 Need MAIL before RCPT");
            return;
        }
        if (!TryPathArgument(argument, "TO:", out var path, out var parameters))
        {
            await BadAsync("501 5.5.4 Syntax: RCPT TO:<address>");
            return;
        }
        if (!MayRelay)
        {
            await ReplyAsync("530 5.7.0 Authentication required");
            return;
        }
        if (parameters.Count > 0)
        {
            await BadAsync("555 5.5.4 Unsupported RCPT parameter");
            return;
        }
        var parsed = SmtpPath.ParsePath(path, _smtpUtf8, allowNull: false);
        if (!parsed.Ok)
        {
            await BadAsync(parsed.Error!);
            return;
        }
        if (_recipients.Count >= _options.Submission.MaxRecipients)
        {
            await ReplyAsync("452 4.5.3 Too many recipients");
            return;
        }
        if (_context.OptOut.Contains(parsed.Address!))
        {
            // Neutral on purpose: the reply must not tell a sender that this person opted out.
            _context.Metrics.MessageRefused("optout");
            await ReplyAsync("550 5.7.1 Delivery to this recipient is not possible through this relay");
            return;
        }
        if (!_reservation!.TryAddRecipient())
        {
            _context.Metrics.MessageRefused("rate");
            await ReplyAsync("450 4.7.1 Recipient rate limit reached, try again later");
            return;
        }
        _recipients.Add(parsed.Address!);
        await ReplyAsync("250 2.1.5 Recipient OK");
    }

    private async Task Rset(string argument)
    {
        if (argument.Length > 0)
        {
            await BadAsync("501 5.5.4 RSET takes no argument");
            return;
        }
        ResetTransaction();
        await ReplyAsync("250 2.0.0 OK");
    }

    private async Task Quit()
    {
        _quit = true;
        await WriteAsync("221 2.0.0 Bye");
    }

    private void ResetTransaction()
    {
        _reservation?.Release();
        _reservation = null;
        _inTransaction = false;
        _smtpUtf8 = false;
        _recipients.Clear();
    }

    /// <summary>Reads "FROM:&lt;path&gt; params", tolerating a space after the colon as most servers do.</summary>
    private static bool TryPathArgument(string argument, string keyword, out string path, out List<string> parameters)
    {
        path = "";
        parameters = [];
        if (!argument.StartsWith(keyword, StringComparison.OrdinalIgnoreCase))
            return false;
        var rest = argument[keyword.Length..].TrimStart(' ');
        if (!rest.StartsWith('<'))
            return false;

        // The path ends at the first '>' outside a quoted local part.
        var quoted = false;
        var end = -1;
        for (var i = 1; i < rest.Length && end < 0; i++)
        {
            if (rest[i] == '\\' && quoted)
                i++;
            else if (rest[i] == '"')
                quoted = !quoted;
            else if (rest[i] == '>' && !quoted)
                end = i;
        }
        if (end < 0)
            return false;
        path = rest[..(end + 1)];
        var tail = rest[(end + 1)..];
        if (tail.Length > 0 && tail[0] != ' ')
            return false;
        parameters = tail.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToList();
        return true;
    }

    private static (string Key, string? Value) SplitParameter(string parameter)
    {
        var equals = parameter.IndexOf('=');
        return equals < 0
            ? (parameter.ToUpperInvariant(), null)
            : (parameter[..equals].ToUpperInvariant(), parameter[(equals + 1)..].ToUpperInvariant());
    }

    /// <summary>Answers a bad command; the last one allowed is answered with 421 and a close.</summary>
    private Task BadAsync(string reply)
    {
        if (++_badCommands < _options.Submission.MaxBadCommands)
            return WriteAsync(reply);
        _quit = true;
        return WriteAsync("421 4.7.0 Too many errors, closing connection");
    }

    private Task ReplyAsync(string reply) =>
        ReplyRawAsync(reply + "\r\n", good: reply[0] is '2' or '3');

    private Task ReplyRawAsync(string text, bool good)
    {
        if (good)
            _badCommands = 0;
        _writer.Write(Encoding.UTF8.GetBytes(text));
        return Task.CompletedTask;
    }

    /// <summary>Queues a reply; replies are flushed before the session waits for input (RFC 2920).</summary>
    private Task WriteAsync(string reply)
    {
        _writer.Write(Encoding.UTF8.GetBytes(reply + "\r\n"));
        return _quit || reply.StartsWith("421", StringComparison.Ordinal) ? FlushAsync() : Task.CompletedTask;
    }

    private async Task TryWriteAsync(string reply)
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            _writer.Write(Encoding.UTF8.GetBytes(reply + "\r\n"));
            await _writer.FlushAsync(cts.Token);
        }
        catch (Exception e) when (IsTransportFailure(e) || e is OperationCanceledException
            or InvalidOperationException)
        {
            // The connection is going away anyway (InvalidOperationException: its writer was
            // already completed, by a STARTTLS whose handshake timed out).
        }
    }

    private async Task FlushAsync()
    {
        _timeout.CancelAfter(_options.Submission.CommandTimeout);
        await FlushConnectionAsync(_timeout.Token);
    }

    /// <summary>
    /// Reads one command. Pipelined commands already in the buffer are taken without flushing;
    /// the replies go out together when the session would otherwise wait for the client.
    /// </summary>
    private async Task<(CommandLineReader.Status? Status, string Line)> ReadCommandAsync()
    {
        var waiting = false;
        while (true)
        {
            ReadResult result;
            if (_needMore || !_reader.TryRead(out result))
            {
                if (!waiting)
                {
                    // One deadline per command from when the session starts waiting for it
                    // (RFC 5321 section 4.5.3.2.7), not per read: partial data does not extend
                    // it, so a client trickling a byte at a time cannot hold a line open.
                    _timeout.CancelAfter(_options.Submission.CommandTimeout);
                    waiting = true;
                }
                await FlushConnectionAsync(_timeout.Token);
                // An idle session between transactions ends at once when the server drains.
                using var idle = _inTransaction
                    ? null
                    : CancellationTokenSource.CreateLinkedTokenSource(_timeout.Token, _draining);
                try
                {
                    result = await ReadConnectionAsync(idle?.Token ?? _timeout.Token);
                }
                catch (OperationCanceledException) when (_draining.IsCancellationRequested && !_timeout.IsCancellationRequested)
                {
                    await TryWriteAsync("421 4.3.2 Service shutting down, closing connection");
                    return (null, "");
                }
            }

            var buffer = result.Buffer;
            var status = _lines.TryRead(ref buffer, out var line);
            if (status != CommandLineReader.Status.NeedMore)
            {
                // Only the line is examined: what follows it may be the next pipelined command.
                _reader.AdvanceTo(buffer.Start);
                _needMore = false;
                return (status, line);
            }
            _reader.AdvanceTo(buffer.Start, result.Buffer.End);
            _needMore = true;
            if (result.IsCompleted)
                return (null, "");
        }
    }

    private async Task StartTls(string argument)
    {
        if (_endpointTls != TlsMode.StartTls || _tls)
        {
            await BadAsync("503 5.5.1 TLS already active or not offered here");
            return;
        }
        if (argument.Length > 0)
        {
            await BadAsync("501 5.5.4 STARTTLS takes no argument");
            return;
        }
        await WriteAsync("220 2.0.0 Ready to start TLS");
        await FlushAsync();

        // RFC 3207 section 4.2 and the STARTTLS injection attacks (CVE-2011-0411): whatever the
        // client pipelined after STARTTLS arrived in plain text, so it is thrown away with the
        // old reader, and every piece of session state starts over.
        await _reader.CompleteAsync();
        await _writer.CompleteAsync();
        _needMore = false;
        if (!await StartTlsAsync())
        {
            _quit = true;
            return;
        }
        _helo = null;
        _esmtp = false;
        _account = null;
        ResetTransaction();
    }

    private async Task<bool> StartTlsAsync()
    {
        var tls = new SslStream(_stream, leaveInnerStreamOpen: false);
        _timeout.CancelAfter(_options.Submission.CommandTimeout);
        try
        {
            await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
            {
                ServerCertificateContext = _context.Certificate,
                EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                ClientCertificateRequired = false,
            }, _timeout.Token);
        }
        catch (Exception e) when (e is AuthenticationException or IOException)
        {
            _logger.LogDebug("session {Session} TLS handshake failed: {Error}", Id, e.GetType().Name);
            await tls.DisposeAsync();
            return false;
        }
        _stream = tls;
        (_reader, _writer) = Transport(_stream);
        _tls = true;
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        ResetTransaction(); // a dropped connection gives back what its transaction had taken
        try
        {
            await _writer.CompleteAsync();
            await _reader.CompleteAsync();
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
        }
        await _stream.DisposeAsync();
        _socket.Dispose();
        _timeout.Dispose();
    }
}
