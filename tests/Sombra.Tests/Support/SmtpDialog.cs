using System.Net.Security;
using System.Net.Sockets;
using System.Text;

namespace Sombra.Tests.Support;

/// <summary>A raw SMTP client for dialog tests: send exactly these bytes, read whole replies.</summary>
public sealed class SmtpDialog : IAsyncDisposable
{
    private readonly TcpClient _client;
    private Stream _stream;
    private readonly List<byte> _pending = [];

    private SmtpDialog(TcpClient client, Stream stream)
    {
        _client = client;
        _stream = stream;
    }

    public string Greeting { get; private set; } = "";

    public static async Task<SmtpDialog> ConnectAsync(int port, bool implicitTls = false, string address = "127.0.0.1")
    {
        var client = new TcpClient(new System.Net.IPEndPoint(System.Net.IPAddress.Parse(address), 0));
        await client.ConnectAsync("127.0.0.1", port);
        Stream stream = client.GetStream();
        var dialog = new SmtpDialog(client, stream);
        if (implicitTls)
            await dialog.HandshakeAsync();
        dialog.Greeting = await dialog.ReadReplyAsync();
        return dialog;
    }

    public async Task HandshakeAsync()
    {
        var tls = new SslStream(_stream, false, (_, _, _, _) => true);
        await tls.AuthenticateAsClientAsync("relay.test");
        _stream = tls;
        _pending.Clear();
    }

    public Task SendAsync(string raw) => SendAsync(Encoding.UTF8.GetBytes(raw));

    public async Task SendAsync(byte[] raw)
    {
        await _stream.WriteAsync(raw);
        await _stream.FlushAsync();
    }

    /// <summary>Sends one command with CRLF and returns the whole reply.</summary>
    public async Task<string> CommandAsync(string command)
    {
        await SendAsync(command + "\r\n");
        return await ReadReplyAsync();
    }

    /// <summary>Reads one (possibly multi-line) reply; empty when the server closed.</summary>
    public async Task<string> ReadReplyAsync(int timeoutSeconds = 30)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(timeoutSeconds));
        var reply = new StringBuilder();
        while (true)
        {
            var line = await ReadLineAsync(cts.Token);
            if (line is null)
                return reply.ToString();
            reply.Append(line).Append('\n');
            if (line.Length < 4 || line[3] != '-')
                return reply.ToString().TrimEnd('\n');
        }
    }

    /// <summary>True when the server has closed the connection.</summary>
    public async Task<bool> ClosedAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            return await ReadLineAsync(cts.Token) is null;
        }
        catch (IOException)
        {
            return true;
        }
    }

    private async Task<string?> ReadLineAsync(CancellationToken cancellationToken)
    {
        var buffer = new byte[1];
        while (true)
        {
            for (var i = 1; i < _pending.Count; i++)
            {
                if (_pending[i - 1] == '\r' && _pending[i] == '\n')
                {
                    var line = Encoding.UTF8.GetString(_pending.GetRange(0, i - 1).ToArray());
                    _pending.RemoveRange(0, i + 1);
                    return line;
                }
            }
            int read;
            try
            {
                read = await _stream.ReadAsync(buffer, cancellationToken);
            }
            catch (IOException)
            {
                return null;
            }
            if (read == 0)
                return null;
            _pending.Add(buffer[0]);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stream.DisposeAsync();
        _client.Dispose();
    }
}
