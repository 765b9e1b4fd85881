using System.Text;
using Microsoft.Extensions.Logging;
using Sombra.Hosting;

namespace Sombra.Submission;

/// <summary>AUTH PLAIN (RFC 4616) and LOGIN, under TLS only (RFC 4954).</summary>
public sealed partial class SmtpSession
{
    private async Task Auth(string argument)
    {
        if (!_options.Submission.RequireAuthentication)
        {
            await BadAsync("503 5.5.1 AUTH is not offered on this relay");
            return;
        }
        if (!AuthAllowed)
        {
            // A starttls endpoint can still protect the password; a plain one never will.
            await BadAsync(_endpointTls == TlsMode.StartTls
                ? "530 5.7.0 Must issue a STARTTLS command first"
                : "538 5.7.11 Encryption required for requested authentication mechanism");
            return;
        }
        if (_helo is null || !_esmtp)
        {
            await BadAsync("503 5.5.1 Send EHLO first");
            return;
        }
        if (Authenticated)
        {
            await BadAsync("503 5.5.1 Already authenticated");
            return;
        }
        if (_inTransaction)
        {
            await BadAsync("503 5.5.1 AUTH not permitted during a mail transaction");
            return;
        }

        var parts = argument.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length is 0 or > 2)
        {
            await BadAsync("501 5.5.4 Syntax: AUTH mechanism [initial-response]");
            return;
        }

        if (_context.Abuse.AuthBlocked(_client))
        {
            _quit = true;
            await WriteAsync("421 4.7.0 Too many authentication failures, closing connection");
            return;
        }

        var mechanism = parts[0].ToUpperInvariant();
        if (mechanism is not ("PLAIN" or "LOGIN"))
        {
            await BadAsync("504 5.5.4 Unrecognized authentication mechanism");
            return;
        }
        var initial = parts.Length == 2 ? parts[1] : null;
        var credentials = mechanism == "PLAIN" ? await PlainAsync(initial) : await LoginAsync(initial);
        if (credentials is null)
            return; // already answered: cancelled or malformed

        var (user, password) = credentials.Value;

        // Counted before the password is checked, so that parallel connections cannot between
        // them have more passwords checked than the limit allows.
        using var attempt = _context.Abuse.BeginAuth(_client, user);
        if (attempt.Verdict == AbuseControls.AuthVerdict.Blocked)
        {
            _quit = true;
            await WriteAsync("421 4.7.0 Too many authentication failures, closing connection");
            return;
        }
        if (attempt.Verdict == AbuseControls.AuthVerdict.Busy)
        {
            await ReplyAsync("454 4.7.0 Temporary authentication failure, try again later");
            return;
        }

        // After a few failures every answer comes later, so guessing passwords gets slow long
        // before the client is shut out.
        if (attempt.Delay > TimeSpan.Zero)
        {
            await FlushAsync();
            await Task.Delay(attempt.Delay, _context.Time, _timeout.Token);
        }

        // PBKDF2 with 600,000 rounds takes a while; keep it off the I/O threads.
        var ok = AccountStore.IsValidName(user)
            && await Task.Run(() => _context.Accounts.Verify(user, password));
        if (!ok)
        {
            _logger.LogInformation("session {Session} authentication failed", Id);
            if (attempt.Failed())
            {
                _quit = true;
                await WriteAsync("421 4.7.0 Too many authentication failures, closing connection");
                return;
            }
            await BadAsync("535 5.7.8 Authentication credentials invalid");
            return;
        }
        _account = user;
        await ReplyAsync("235 2.7.0 Authentication successful");
    }

    private async Task<(string, string)?> PlainAsync(string? initial)
    {
        var response = initial ?? await ChallengeAsync("");
        if (response is null)
            return null;
        var decoded = await DecodeAsync(response == "=" ? "" : response);
        if (decoded is null)
            return null;

        // authzid NUL authcid NUL passwd; a different authorization identity is not supported.
        var fields = decoded.Split('\0');
        if (fields.Length != 3 || (fields[0].Length > 0 && fields[0] != fields[1]))
        {
            await BadAsync("501 5.5.2 Malformed PLAIN response");
            return null;
        }
        return (fields[1], fields[2]);
    }

    private async Task<(string, string)?> LoginAsync(string? initial)
    {
        var userResponse = initial ?? await ChallengeAsync("VXNlcm5hbWU6"); // "Username:"
        if (userResponse is null)
            return null;
        var user = await DecodeAsync(userResponse);
        if (user is null)
            return null;
        var passwordResponse = await ChallengeAsync("UGFzc3dvcmQ6"); // "Password:"
        if (passwordResponse is null)
            return null;
        var password = await DecodeAsync(passwordResponse);
        return password is null ? null : (user, password);
    }

    /// <summary>Sends a 334 challenge and reads the client's line; null when cancelled or broken.</summary>
    private async Task<string?> ChallengeAsync(string challenge)
    {
        await WriteAsync("334 " + challenge);
        var (status, line) = await ReadCommandAsync();
        if (status is null)
        {
            _quit = true;
            return null;
        }
        if (status != CommandLineReader.Status.Line)
        {
            await BadAsync("500 5.5.2 Line too long or malformed");
            return null;
        }
        if (line == "*")
        {
            await BadAsync("501 5.0.0 Authentication cancelled");
            return null;
        }
        return line;
    }

    private async Task<string?> DecodeAsync(string base64)
    {
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(Convert.FromBase64String(base64));
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            await BadAsync("501 5.5.2 Cannot decode base64 response");
            return null;
        }
    }
}
