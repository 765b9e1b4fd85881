using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace Sombra.Queue;

/// <summary>What delivery and the operator commands ask of the queue: due work, claims, outcomes.</summary>
public sealed partial class SqliteQueueStore
{
    public async Task<IReadOnlyList<DueMessage>> FindDueAsync(DateTimeOffset now, int limit,
        CancellationToken cancellationToken)
    {
        await EnsureInitialized();
        var result = new List<DueMessage>();
        await using var connection = await OpenReaderAsync(cancellationToken);

        // Finished messages first: they only need their report and removal. Claimed messages are
        // still due until their outcome is recorded, so as many more rows are read as are claimed.
        await using (var finished = connection.CreateCommand())
        {
            finished.CommandText = """
                SELECT id, created_at, release_at, attempts FROM messages WHERE pending = 0 LIMIT $limit
                """;
            finished.Parameters.AddWithValue("$limit", limit + _claims.Count);
            await ReadDue(finished, result, limit, cancellationToken);
        }

        // due_at is the earliest pending recipient's next attempt, kept with every write, so the
        // partial index hands out the oldest due messages without looking at the rest of the queue.
        await using (var due = connection.CreateCommand())
        {
            due.CommandText = """
                SELECT id, created_at, release_at, attempts FROM messages
                WHERE pending > 0 AND held = 0 AND due_at <= $now ORDER BY due_at LIMIT $limit
                """;
            due.Parameters.AddWithValue("$now", now.ToUnixTimeMilliseconds());
            due.Parameters.AddWithValue("$limit", limit + _claims.Count);
            await ReadDue(due, result, limit, cancellationToken);
        }
        return result;
    }

    private async Task ReadDue(SqliteCommand command, List<DueMessage> result, int limit, CancellationToken ct)
    {
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (result.Count < limit && await reader.ReadAsync(ct))
        {
            var id = reader.GetString(0);
            if (_claims.ContainsKey(id) || result.Exists(r => r.Id == id))
                continue;
            result.Add(new DueMessage(id, FromMs(reader.GetInt64(1)), FromMs(reader.GetInt64(2)), reader.GetInt32(3)));
        }
    }

    public async Task<DateTimeOffset?> NextDueAsync(CancellationToken cancellationToken)
    {
        await EnsureInitialized();
        await using var connection = await OpenReaderAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT MIN(due_at) FROM messages WHERE pending > 0 AND held = 0";
        var value = await command.ExecuteScalarAsync(cancellationToken);
        return value is long ms ? FromMs(ms) : null;
    }

    public async Task<IReadOnlyList<DueMessage>> FindPooledAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        await EnsureInitialized();
        var result = new List<DueMessage>();
        await using var connection = await OpenReaderAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT id, created_at, release_at, attempts FROM messages
            WHERE pending > 0 AND held = 1 AND due_at <= $now ORDER BY due_at
            """;
        command.Parameters.AddWithValue("$now", now.ToUnixTimeMilliseconds());
        await ReadDue(command, result, int.MaxValue, cancellationToken);
        return result;
    }

    public async Task ReleasePooledAsync(IReadOnlyList<string> ids, CancellationToken cancellationToken)
    {
        if (ids.Count == 0)
            return;
        await EnsureInitialized();
        await Write(syncDirectory: false, db =>
        {
            var update = db.Command("UPDATE messages SET held = 0 WHERE id = $id");
            var id = update.Parameters.Add("$id", SqliteType.Text);
            foreach (var each in ids)
            {
                id.Value = each;
                update.ExecuteNonQuery();
            }
        });
        WorkAvailable?.Invoke();
    }

    public async Task<QueuedMessage?> ClaimAsync(string id, CancellationToken cancellationToken)
    {
        if (!_claims.TryAdd(id, 0))
            return null;
        try
        {
            var message = await GetAsync(id, cancellationToken);
            if (message is null)
                _claims.TryRemove(id, out _);
            return message;
        }
        catch
        {
            _claims.TryRemove(id, out _);
            throw;
        }
    }

    public void Release(string id) => _claims.TryRemove(id, out _);

    public async Task<Stream> OpenBodyAsync(string id, CancellationToken cancellationToken)
    {
        await EnsureInitialized();
        await using var connection = await OpenReaderAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT body IS NULL, body FROM messages WHERE id = $id";
        command.Parameters.AddWithValue("$id", id);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
            throw new FileNotFoundException($"Queued message {id} does not exist.");
        if (!reader.GetBoolean(0))
            return new MemoryStream(reader.GetFieldValue<byte[]>(1), writable: false);
        return new FileStream(BodyPath(id), FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete,
            64 * 1024, FileOptions.Asynchronous | FileOptions.SequentialScan);
    }

    public async Task RecordAsync(string id, IReadOnlyList<RecipientOutcome> outcomes,
        CancellationToken cancellationToken)
    {
        if (outcomes.Count == 0)
            return;
        await EnsureInitialized();
        // Lost in a crash, an outcome only means another attempt: the next flush is soon enough.
        await Write(syncDirectory: false, Durability.Soon, unlinkAfter: null, db =>
        {
            var update = db.Command("""
                UPDATE recipients SET state = $state, attempts = attempts + 1,
                    next_attempt = COALESCE($next, next_attempt), last_error = $error
                WHERE message_id = $id AND idx = $idx AND state = 0
                """);
            update.Parameters.AddWithValue("$id", id);
            var state = update.Parameters.Add("$state", SqliteType.Integer);
            var next = update.Parameters.Add("$next", SqliteType.Integer);
            var error = update.Parameters.Add("$error", SqliteType.Text);
            var idx = update.Parameters.Add("$idx", SqliteType.Integer);
            foreach (var o in outcomes)
            {
                state.Value = (int)o.State;
                next.Value = o.NextAttempt is { } n ? n.ToUnixTimeMilliseconds() : DBNull.Value;
                error.Value = (object?)o.Error ?? DBNull.Value;
                idx.Value = o.Index;
                update.ExecuteNonQuery();
            }
            UpdatePending(db, id);
        });
    }

    private static void UpdatePending(WriteContext db, string? id)
    {
        var pending = db.Command("""
            UPDATE messages SET
                pending = (SELECT COUNT(*) FROM recipients r WHERE r.message_id = messages.id AND r.state = 0),
                due_at = (SELECT MIN(next_attempt) FROM recipients r
                          WHERE r.message_id = messages.id AND r.state = 0),
                attempts = (SELECT MAX(attempts) FROM recipients r WHERE r.message_id = messages.id)
            """ + (id is null ? "" : " WHERE id = $id"));
        if (id is not null)
            pending.Parameters.AddWithValue("$id", id);
        pending.ExecuteNonQuery();
    }

    // Removal after delivery need not wait for its own flush (see Durability.Soon); an operator's
    // delete does: a message deleted by hand must not come back after a crash.
    public Task FinishAsync(string id, CancellationToken cancellationToken) => Remove(id, Durability.Soon);

    public async Task<bool> DeleteAsync(string id, CancellationToken cancellationToken) =>
        await Remove(id, Durability.Now) > 0;

    private async Task<int> Remove(string id, Durability durability)
    {
        await EnsureInitialized();
        var removed = 0;
        // The body file goes only once the record's removal is durable: a crash in between must
        // not leave a record whose body is gone.
        await Write(syncDirectory: false, durability, unlinkAfter: BodyPath(id), db =>
        {
            var recipients = db.Command("DELETE FROM recipients WHERE message_id = $id");
            recipients.Parameters.AddWithValue("$id", id);
            recipients.ExecuteNonQuery();
            var message = db.Command("DELETE FROM messages WHERE id = $id");
            message.Parameters.AddWithValue("$id", id);
            removed = message.ExecuteNonQuery();
        });
        return removed;
    }

    public async Task<IReadOnlyList<QueuedMessage>> ListAsync(CancellationToken cancellationToken)
    {
        await EnsureInitialized();
        await using var connection = await OpenReaderAsync(cancellationToken);
        return await Load(connection, null, cancellationToken);
    }

    public async Task<QueuedMessage?> GetAsync(string id, CancellationToken cancellationToken)
    {
        await EnsureInitialized();
        await using var connection = await OpenReaderAsync(cancellationToken);
        return (await Load(connection, id, cancellationToken)).FirstOrDefault();
    }

    private static async Task<List<QueuedMessage>> Load(SqliteConnection connection, string? id, CancellationToken ct)
    {
        // One read transaction, so that messages and recipients come from the same snapshot. It is
        // deferred: Microsoft.Data.Sqlite's default is BEGIN IMMEDIATE, which takes the write lock
        // and makes every reader queue behind the writer loop, sleeping in busy retries.
        await using var transaction = connection.BeginTransaction(deferred: true);
        var recipients = new Dictionary<string, List<QueuedRecipient>>(StringComparer.Ordinal);
        await using (var command = connection.CreateCommand())
        {
            command.Transaction = transaction;
            command.CommandText = """
                SELECT message_id, idx, address, state, attempts, next_attempt, last_error FROM recipients
                """ + (id is null ? "" : " WHERE message_id = $id") + " ORDER BY message_id, idx";
            if (id is not null)
                command.Parameters.AddWithValue("$id", id);
            await using var reader = await command.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                var key = reader.GetString(0);
                if (!recipients.TryGetValue(key, out var list))
                    recipients[key] = list = [];
                list.Add(new QueuedRecipient(reader.GetInt32(1), reader.GetString(2), (RecipientState)reader.GetInt32(3),
                    reader.GetInt32(4), FromMs(reader.GetInt64(5)), reader.IsDBNull(6) ? null : reader.GetString(6)));
            }
        }

        var messages = new List<QueuedMessage>();
        await using (var command = connection.CreateCommand())
        {
            command.Transaction = transaction;
            command.CommandText = """
                SELECT id, created_at, release_at, sender, notify, trace, needs_8bit, needs_utf8, body_size
                FROM messages
                """ + (id is null ? "" : " WHERE id = $id") + " ORDER BY created_at";
            if (id is not null)
                command.Parameters.AddWithValue("$id", id);
            await using var reader = await command.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                var key = reader.GetString(0);
                var rcpts = recipients.GetValueOrDefault(key) ?? [];
                var envelope = new QueueEnvelope(
                    reader.GetString(3),
                    rcpts.Select(r => r.Address).ToList(),
                    reader.IsDBNull(4) ? null : reader.GetString(4),
                    JsonSerializer.Deserialize<List<string>>(reader.GetString(5)) ?? [],
                    FromMs(reader.GetInt64(2)),
                    reader.GetInt32(6) != 0,
                    reader.GetInt32(7) != 0);
                messages.Add(new QueuedMessage(key, FromMs(reader.GetInt64(1)), envelope, rcpts, reader.GetInt64(8)));
            }
        }
        return messages;
    }

    public async Task<int> RetryAsync(string? id, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await EnsureInitialized();
        var changed = 0;
        await Write(syncDirectory: false, db =>
        {
            // A retry never cuts a mixing hold short: that would undo the delay that hides the sender.
            var update = db.Command("""
                UPDATE recipients SET next_attempt =
                    MAX($now, (SELECT release_at FROM messages m WHERE m.id = recipients.message_id))
                WHERE state = 0
                """ + (id is null ? "" : " AND message_id = $id"));
            update.Parameters.AddWithValue("$now", now.ToUnixTimeMilliseconds());
            if (id is not null)
                update.Parameters.AddWithValue("$id", id);
            changed = update.ExecuteNonQuery();
            UpdatePending(db, id);
        });
        if (changed > 0)
            WorkAvailable?.Invoke();
        return changed;
    }

    public (long Depth, DateTimeOffset? Oldest) Depth()
    {
        if (_initialized is not { IsCompletedSuccessfully: true })
            return (0, null);
        using var connection = new SqliteConnection(_connectionString);
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*), MIN(created_at) FROM messages";
        using var reader = command.ExecuteReader();
        reader.Read();
        return (reader.GetInt64(0), reader.IsDBNull(1) ? null : FromMs(reader.GetInt64(1)));
    }
}
