using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Sombra.Tests.Support;

/// <summary>
/// A small authoritative DNS server on 127.0.0.1 (UDP, ephemeral port) with a test zone: enough of
/// RFC 1035 to answer MX, A and AAAA queries, NXDOMAIN, and SERVFAIL for names listed as failing.
/// Written here because dnsmasq cannot serve a null MX (RFC 7505) or a SERVFAIL on demand.
/// </summary>
public sealed class TestDns : IDisposable
{
    private readonly UdpClient _udp = new(new IPEndPoint(IPAddress.Loopback, 0));
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public Dictionary<string, List<(int Preference, string Host)>> Mx { get; } = new(StringComparer.OrdinalIgnoreCase);
    public Dictionary<string, List<IPAddress>> Addresses { get; } = new(StringComparer.OrdinalIgnoreCase);
    public HashSet<string> Failing { get; } = new(StringComparer.OrdinalIgnoreCase);

    public TestDns() => _loop = Task.Run(Serve);

    public string Endpoint => $"127.0.0.1:{((IPEndPoint)_udp.Client.LocalEndPoint!).Port}";

    private async Task Serve()
    {
        while (!_stop.IsCancellationRequested)
        {
            UdpReceiveResult request;
            try
            {
                request = await _udp.ReceiveAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            try
            {
                var reply = Answer(request.Buffer);
                await _udp.SendAsync(reply, request.RemoteEndPoint, _stop.Token);
            }
            catch (Exception) when (!_stop.IsCancellationRequested)
            {
                // A malformed query gets no answer.
            }
        }
    }

    private byte[] Answer(byte[] query)
    {
        var offset = 12;
        var name = ReadName(query, ref offset);
        var type = BinaryPrimitives.ReadUInt16BigEndian(query.AsSpan(offset));
        var questionEnd = offset + 4;

        var answers = new List<byte[]>();
        var rcode = 0;
        var known = Mx.ContainsKey(name) || Addresses.ContainsKey(name);
        if (Failing.Contains(name))
            rcode = 2;
        else if (!known)
            rcode = 3;
        else if (type == 15 && Mx.TryGetValue(name, out var mx))
            foreach (var (preference, host) in mx)
            {
                var data = new List<byte> { (byte)(preference >> 8), (byte)preference };
                data.AddRange(EncodeName(host));
                answers.Add(Record(15, data.ToArray()));
            }
        else if (type is 1 or 28 && Addresses.TryGetValue(name, out var ips))
            foreach (var ip in ips.Where(i => i.AddressFamily == (type == 1 ? AddressFamily.InterNetwork
                         : AddressFamily.InterNetworkV6)))
                answers.Add(Record(type, ip.GetAddressBytes()));

        var reply = new List<byte>();
        reply.AddRange(query.AsSpan(0, 2).ToArray());
        reply.Add(0x84); // response, authoritative
        reply.Add((byte)(0x80 | rcode)); // recursion available
        reply.AddRange([0, 1, (byte)(answers.Count >> 8), (byte)answers.Count, 0, 0, 0, 0]);
        reply.AddRange(query.AsSpan(12, questionEnd - 12).ToArray());
        foreach (var a in answers)
            reply.AddRange(a);
        return reply.ToArray();
    }

    private static byte[] Record(ushort type, byte[] data)
    {
        var r = new List<byte> { 0xC0, 12, (byte)(type >> 8), (byte)type, 0, 1, 0, 0, 0, 60 };
        r.Add((byte)(data.Length >> 8));
        r.Add((byte)data.Length);
        r.AddRange(data);
        return r.ToArray();
    }

    private static byte[] EncodeName(string name)
    {
        var bytes = new List<byte>();
        foreach (var label in name.TrimEnd('.').Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            bytes.Add((byte)label.Length);
            bytes.AddRange(Encoding.ASCII.GetBytes(label));
        }
        bytes.Add(0);
        return bytes.ToArray();
    }

    private static string ReadName(byte[] message, ref int offset)
    {
        var labels = new List<string>();
        while (message[offset] != 0)
        {
            var length = message[offset++];
            labels.Add(Encoding.ASCII.GetString(message, offset, length));
            offset += length;
        }
        offset++;
        return string.Join('.', labels);
    }

    public void Dispose()
    {
        _stop.Cancel();
        _udp.Dispose();
        try
        {
            _loop.Wait(2000);
        }
        catch (AggregateException)
        {
        }
    }
}
