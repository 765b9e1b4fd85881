using Sombra.Queue;

namespace Sombra.Delivery;

/// <summary>
/// Delivery:Directory: writes each message as <c>ID.eml</c> into a folder instead of sending it,
/// written to a temporary name, flushed and renamed, so a reader never sees half a file. A retry
/// after a crash overwrites the same file instead of adding a duplicate.
/// </summary>
public sealed class DirectoryTransport(string directory) : IDeliveryTransport
{
    public async Task<IReadOnlyList<RecipientResult>> SendAsync(Outbound outbound, string domain,
        IReadOnlyList<QueuedRecipient> recipients, CancellationToken cancellationToken)
    {
        try
        {
            Directory.CreateDirectory(directory);
            var final = Path.Combine(directory, outbound.Message.Id + ".eml");
            var temp = final + ".tmp";
            await using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None,
                64 * 1024, FileOptions.Asynchronous))
            {
                await file.WriteAsync(outbound.Prefix, cancellationToken);
                await using var body = await outbound.OpenBody(cancellationToken);
                body.Position = 0;
                await body.CopyToAsync(file, cancellationToken);
                if (!outbound.EndsWithCrlf)
                    await file.WriteAsync("\r\n"u8.ToArray(), cancellationToken);
                file.Flush(flushToDisk: true);
            }
            File.Move(temp, final, overwrite: true);
            // The queue forgets the message once this returns, so the rename must be durable first.
            DirectorySync.Flush(directory);
            return recipients.Select(r => new RecipientResult(r.Index, Outcome.Delivered, "250 written to the directory"))
                .ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return recipients.Select(r => new RecipientResult(r.Index, Outcome.Temporary,
                "451 4.3.0 could not write to Delivery:Directory")).ToList();
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
