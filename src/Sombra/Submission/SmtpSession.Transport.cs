using System.IO.Pipelines;
using System.Net.Sockets;
using System.Security.Authentication;

namespace Sombra.Submission;

/// <summary>
/// Reads and writes of the connection. Their failures mean the client went away or broke the
/// stream, so they travel as <see cref="TransportException"/>: any other exception inside a
/// command is a fault of ours, answered 451 4.3.0 while the session goes on.
/// </summary>
public sealed partial class SmtpSession
{
    private sealed class TransportException(Exception inner) : Exception("The connection failed.", inner);

    private static bool IsTransportFailure(Exception e) =>
        e is IOException or SocketException or ObjectDisposedException or AuthenticationException;

    private async ValueTask<ReadResult> ReadConnectionAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await _reader.ReadAsync(cancellationToken);
        }
        catch (Exception e) when (IsTransportFailure(e))
        {
            throw new TransportException(e);
        }
    }

    private async ValueTask FlushConnectionAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _writer.FlushAsync(cancellationToken);
        }
        catch (Exception e) when (IsTransportFailure(e))
        {
            throw new TransportException(e);
        }
    }
}
