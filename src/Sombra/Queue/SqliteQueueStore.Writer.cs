using Microsoft.Data.Sqlite;

namespace Sombra.Queue;

/// <summary>The single writer loop and its group commit (see the class remarks).</summary>
public sealed partial class SqliteQueueStore
{
    /// <summary>How long a write of <see cref="Durability.Soon"/> may wait for its flush.</summary>
    internal static readonly TimeSpan SoonWindow = TimeSpan.FromMilliseconds(200);

    /// <summary>
    /// Now: the commit is flushed before the caller goes on (a new message, before its 250).
    /// Soon: delivery's bookkeeping (an outcome, a removal after delivery). It commits without
    /// its own fsync (synchronous NORMAL), and becomes durable with the next flushed commit or
    /// within <see cref="SoonWindow"/>. Lost in a crash, it means one more attempt of a message
    /// that was in flight: at least once, as promised. This spares a single session one of its
    /// two flushes per message, which is what Postfix spends too (its removal is an unlink).
    /// </summary>
    internal enum Durability { Now, Soon }

    private sealed record WriteOp(Action<WriteContext> Apply, bool SyncDirectory, Durability Durability,
        string? UnlinkAfter)
    {
        public readonly TaskCompletionSource Done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    // Writes committed without a flush, and files to remove once they are flushed.
    private bool _unflushed;
    private readonly List<string> _unlinkAfterFlush = [];
    private bool _synchronousFull = true;

    /// <summary>
    /// The writer loop's connection and current transaction. Its commands are kept and reused:
    /// Microsoft.Data.Sqlite keeps a command's prepared statement while its text stays the same,
    /// and parsing the same few statements for every message was a visible share of the CPU.
    /// Only the writer loop's thread uses it.
    /// </summary>
    private sealed class WriteContext(SqliteConnection connection)
    {
        private readonly Dictionary<string, SqliteCommand> _commands = new(StringComparer.Ordinal);

        public SqliteTransaction? Transaction { get; set; }

        public SqliteCommand Command(string sql)
        {
            if (!_commands.TryGetValue(sql, out var command))
                _commands[sql] = command = new SqliteCommand(sql, connection);
            command.Parameters.Clear();
            command.Transaction = Transaction;
            return command;
        }

        public void Dispose()
        {
            foreach (var command in _commands.Values)
                command.Dispose();
            _commands.Clear();
        }
    }

    private Task Write(bool syncDirectory, Action<WriteContext> apply) =>
        Write(syncDirectory, Durability.Now, null, apply);

    private Task Write(bool syncDirectory, Durability durability, string? unlinkAfter, Action<WriteContext> apply)
    {
        var op = new WriteOp(apply, syncDirectory, durability, unlinkAfter);
        if (!_writes.Writer.TryWrite(op))
            throw new QueueStorageException("The queue is shut down.");
        return op.Done.Task;
    }

    private async Task WriterLoop()
    {
        var batch = new List<WriteOp>();
        while (await WaitForWritesAsync())
        {
            batch.Clear();
            while (batch.Count < MaxBatch && _writes.Reader.TryRead(out var op))
                batch.Add(op);
            try
            {
                Apply(batch);
                foreach (var op in batch)
                    op.Done.TrySetResult();
            }
            catch (Exception) when (batch.Count > 1)
            {
                // One bad write must not fail its neighbours: retry each alone.
                foreach (var op in batch)
                {
                    try
                    {
                        Apply([op]);
                        op.Done.TrySetResult();
                    }
                    catch (Exception e)
                    {
                        op.Done.TrySetException(e);
                    }
                }
            }
            catch (Exception e)
            {
                batch[0].Done.TrySetException(e);
            }
        }
        if (_unflushed)
            TryFlush();
    }

    /// <summary>
    /// Waits for writes; with unflushed ones pending, only for <see cref="SoonWindow"/>, and then
    /// flushes them. False when the store is shutting down and every write is done.
    /// </summary>
    private async Task<bool> WaitForWritesAsync()
    {
        while (_unflushed)
        {
            using var window = new CancellationTokenSource(SoonWindow);
            try
            {
                return await _writes.Reader.WaitToReadAsync(window.Token);
            }
            catch (OperationCanceledException)
            {
                TryFlush();
            }
        }
        return await _writes.Reader.WaitToReadAsync();
    }

    // A commit under synchronous FULL flushes the whole WAL, earlier unflushed commits with it;
    // a one-row update is the smallest such commit.
    private void TryFlush()
    {
        try
        {
            Apply([new WriteOp(db => db.Command("UPDATE flushes SET n = n + 1").ExecuteNonQuery(), false,
                Durability.Now, null)]);
        }
        catch (Exception e) when (e is SqliteException or IOException)
        {
            // Passing trouble: the next write tries again, and a crash meanwhile only repeats
            // an attempt.
        }
    }

    private void Apply(List<WriteOp> batch)
    {
        if (batch.Any(op => op.SyncDirectory))
            DirectorySync.Flush(_queuePath);
        var flush = batch.Exists(op => op.Durability == Durability.Now);
        if (flush != _synchronousFull)
        {
            Execute(_writer!, flush ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
            _synchronousFull = flush;
        }

        using var transaction = _writer!.BeginTransaction();
        _context!.Transaction = transaction;
        try
        {
            foreach (var op in batch)
                op.Apply(_context);
            transaction.Commit();
        }
        finally
        {
            _context.Transaction = null;
        }

        foreach (var op in batch)
            if (op.UnlinkAfter is { } path)
                _unlinkAfterFlush.Add(path);
        if (!flush)
        {
            _unflushed = true;
            return;
        }
        _unflushed = false;
        foreach (var path in _unlinkAfterFlush)
            TryDelete(path);
        _unlinkAfterFlush.Clear();
    }
}
