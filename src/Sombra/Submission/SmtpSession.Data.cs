using System.Buffers;
using System.IO.Pipelines;
using Microsoft.Extensions.Logging;
using Sombra.Anonymity;
using Sombra.Queue;

namespace Sombra.Submission;

/// <summary>
/// DATA: the message streams from the socket through the strict reader into the anonymizer,
/// and from the anonymizer into the queue. Neither the original nor the output is ever held
/// whole; the original exists only in the pipe between the two.
/// </summary>
public sealed partial class SmtpSession
{
    /// <summary>How long a DATA block may be slow before the minimum rate applies.</summary>
    private static readonly TimeSpan RateGrace = TimeSpan.FromSeconds(30);

    private async Task Data(string argument)
    {
        if (!_inTransaction)
        {
            await BadAsync("503 5.5.1 Need MAIL before DATA");
            return;
        }
        if (argument.Length > 0)
        {
            await BadAsync("501 5.5.4 DATA takes no argument");
            return;
        }
        if (_recipients.Count == 0)
        {
            await BadAsync("554 5.5.1 No valid recipients");
            return;
        }

        await WriteAsync("354 End data with <CR><LF>.<CR><LF>");
        string reply;
        try
        {
            reply = await ReceiveAsync();
        }
        finally
        {
            ResetTransaction();
        }
        if (reply[0] == '2')
            _accepted++;
        else
            _refused++;
        await ReplyAsync(reply);
    }

    private async Task<string> ReceiveAsync()
    {
        var data = new DataReader(_options.Submission.MaxMessageSize);
        var facts = new SessionFacts(_client, _helo!, _account, _tls, _esmtp, _recipients.ToArray());

        // Backpressure: the anonymizer reads at most about a megabyte behind the socket.
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 1 << 20, resumeWriterThreshold: 1 << 19,
            useSynchronizationContext: false));
        await using var incoming = _context.Queue.CreateIncoming();
        using var scrubCancel = new CancellationTokenSource();
        var scrub = Task.Run(() => _context.Anonymizer.ScrubAsync(
            pipe.Reader.AsStream(), incoming.Body, facts, scrubCancel.Token));

        Exception? transportFault = null;
        try
        {
            await ReadDataAsync(data, pipe.Writer);
        }
        catch (Exception e)
        {
            transportFault = e;
        }

        // The anonymizer sees the end of the input, or the failure that cut it short.
        if (transportFault is not null)
            scrubCancel.Cancel();
        await pipe.Writer.CompleteAsync(transportFault);
        ScrubResult? result = null;
        Exception? scrubFault = null;
        try
        {
            result = await scrub;
        }
        catch (Exception e)
        {
            scrubFault = e;
        }
        await pipe.Reader.CompleteAsync();

        if (transportFault is not null)
            throw transportFault;
        if (data.FaultReply is { } refusal)
        {
            _context.Metrics.MessageRefused(data.Smuggling ? "smuggling" : data.TooBig ? "size" : "line-length");
            _logger.LogInformation("session {Session} message refused: {Code}", Id, refusal[..9]);
            return refusal;
        }
        if (scrubFault is not null || result is null)
        {
            // The anonymizer's exception text may quote the message: log its type only.
            _logger.LogWarning("session {Session} anonymizer failed: {Error}", Id, scrubFault?.GetType().Name);
            _context.Metrics.MessageRefused("internal");
            return "451 4.3.0 Temporary failure processing the message, try again later";
        }
        if (!result.Accepted)
        {
            _logger.LogInformation("session {Session} message refused: 5.6.0 cannot scrub", Id);
            _context.Metrics.MessageRefused("scrub");
            return "554 5.6.0 " + OneLine(result.Refusal!);
        }

        var envelope = new QueueEnvelope(
            _options.Anonymity.SenderAddress!,
            facts.Recipients,
            _account is null ? null : _context.Accounts.Find(_account)?.Notify,
            result.TraceHeaders,
            ReleaseTime(),
            result.Needs8BitMime,
            result.NeedsSmtpUtf8,
            Pooled: _options.Mixing.Pool);
        try
        {
            var id = await _context.Queue.CommitAsync(incoming, envelope, CancellationToken.None);
            _context.Abuse.RecordMessage(LimitKeys, facts.Recipients.Count);
            _context.Metrics.MessageAccepted();
            // Not the queue id: delivery logs it at release, and the two lines together would
            // tie the moment of submission to the message that leaves, undoing any mixing.
            _logger.LogInformation("session {Session} queued a message for {Recipients} recipient(s)",
                Id, facts.Recipients.Count);
            return $"250 2.0.0 Ok: queued as {id}";
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A full disk or an I/O error is passing trouble: 4xx, so the client keeps the mail.
            _logger.LogWarning("session {Session} could not store the message: {Error}", Id, e.GetType().Name);
            _context.Metrics.MessageRefused("storage");
            return "451 4.3.0 Temporary failure storing the message, try again later";
        }
    }

    private async Task ReadDataAsync(DataReader data, PipeWriter sink)
    {
        var started = _context.Time.GetTimestamp();
        var deadline = _options.Submission.DataTimeout;
        var consumerGone = false;
        while (!data.Finished)
        {
            ReadResult result;
            if (_needMore || !_reader.TryRead(out result))
            {
                await FlushAsync();
                var elapsed = _context.Time.GetElapsedTime(started);
                if (elapsed > deadline
                    || elapsed > RateGrace && data.Size / elapsed.TotalSeconds < _options.Submission.MinDataRate)
                {
                    // Too slow overall: end the session as for any other timeout.
                    _timeout.Cancel();
                    _timeout.Token.ThrowIfCancellationRequested();
                }
                _timeout.CancelAfter(Min(_options.Submission.CommandTimeout, deadline - elapsed));
                result = await _reader.ReadAsync(_timeout.Token);
            }

            var buffer = result.Buffer;
            long consumed = 0;
            IBufferWriter<byte> output = consumerGone ? NullWriter.Instance : sink;
            foreach (var segment in buffer)
            {
                consumed += data.Feed(segment.Span, output);
                if (data.Finished)
                    break;
            }
            _reader.AdvanceTo(buffer.GetPosition(consumed), data.Finished ? buffer.GetPosition(consumed) : buffer.End);
            _needMore = !data.Finished;

            if (!consumerGone)
            {
                // A finished consumer (the anonymizer gave up early) must not stop us from
                // reading to the real terminator, or the rest would be read as commands.
                var flush = await sink.FlushAsync(_timeout.Token);
                consumerGone = flush.IsCompleted;
            }
            if (!data.Finished && result.IsCompleted)
                throw new IOException("The connection closed during DATA.");
        }
    }

    /// <summary>The mixing delay of issue 6: uniform in [MinDelay, MaxDelay], fixed at submission and stored.</summary>
    private DateTimeOffset ReleaseTime()
    {
        var mixing = _options.Mixing;
        var now = _context.Time.GetUtcNow();
        if (mixing.MaxDelay <= TimeSpan.Zero)
            return now;
        var span = (mixing.MaxDelay - mixing.MinDelay).Ticks;
        var jitter = span <= 0 ? 0 : System.Security.Cryptography.RandomNumberGenerator.GetInt32(int.MaxValue) * (double)span / int.MaxValue;
        return now + mixing.MinDelay + TimeSpan.FromTicks((long)jitter);
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    private static string OneLine(string text) =>
        new(text.Select(c => char.IsControl(c) ? ' ' : c).ToArray());

    /// <summary>Swallows content once nobody reads it, while DATA is read to its end.</summary>
    private sealed class NullWriter : IBufferWriter<byte>
    {
        public static readonly NullWriter Instance = new();
        private readonly byte[] _scratch = new byte[8192];
        public void Advance(int count) { }
        public Memory<byte> GetMemory(int sizeHint = 0) => sizeHint <= _scratch.Length ? _scratch : new byte[sizeHint];
        public Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;
    }
}
