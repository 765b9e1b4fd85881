using Microsoft.Data.Sqlite;

namespace Sombra.Queue;

/// <summary>The single writer loop and its group commit (see the class remarks).</summary>
public sealed partial class SqliteQueueStore
{

    private sealed record WriteOp(Action<WriteContext> Apply, bool SyncDirectory)
    {
        public readonly TaskCompletionSource Done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

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

    private Task Write(bool syncDirectory, Action<WriteContext> apply)
    {
        var op = new WriteOp(apply, syncDirectory);
        if (!_writes.Writer.TryWrite(op))
            throw new QueueStorageException("The queue is shut down.");
        return op.Done.Task;
    }

    private async Task WriterLoop()
    {
        var batch = new List<WriteOp>();
        while (await _writes.Reader.WaitToReadAsync())
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
    }

    private void Apply(List<WriteOp> batch)
    {
        if (batch.Any(op => op.SyncDirectory))
            DirectorySync.Flush(_queuePath);
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
    }
}
