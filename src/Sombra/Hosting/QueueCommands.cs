using System.CommandLine;
using System.Globalization;
using MimeKit;
using Sombra.Queue;
using Sombra.Submission;

namespace Sombra.Hosting;

/// <summary>
/// <c>sombra queue list|show|retry|delete</c>. They open the relay's SQLite queue from a second
/// process, which WAL allows while the relay runs; they never clean up half-written files, which
/// may be messages a live session is still receiving.
/// </summary>
public static class QueueCommands
{
    public static Command Create()
    {
        var queue = new Command("queue", "Inspect and manage the delivery queue");
        var id = new Argument<string>("ID") { Description = "queue id (from sombra queue list)" };

        var list = new Command("list", "List queued messages: id, age, recipient domains, attempts, next attempt, last error");
        list.SetAction((parsed, ct) => Run(parsed, async (store, output, error) =>
        {
            var now = DateTimeOffset.UtcNow;
            var messages = await store.ListAsync(ct);
            output.WriteLine("ID\tAGE\tDOMAINS\tATTEMPTS\tNEXT\tLAST ERROR");
            foreach (var m in messages)
            {
                var pending = m.Recipients.Where(r => r.State == RecipientState.Pending).ToList();
                var domains = string.Join(',', pending.Select(r => SmtpPath.DomainOf(r.Address)).Distinct());
                var attempts = m.Recipients.Count == 0 ? 0 : m.Recipients.Max(r => r.Attempts);
                var next = pending.Count == 0 ? "-" : Stamp(pending.Min(r => r.NextAttempt));
                var last = m.Recipients.OrderByDescending(r => r.Attempts).Select(r => r.LastError)
                    .FirstOrDefault(e => e is not null) ?? "-";
                output.WriteLine($"{m.Id}\t{Age(now - m.CreatedAt)}\t{(domains.Length == 0 ? "-" : domains)}\t" +
                    $"{attempts}\t{next}\t{last}");
            }
            output.WriteLine($"{messages.Count} message(s)");
            return Cli.Ok;
        }));

        var show = new Command("show", "Show a queued message's envelope and headers") { id };
        show.SetAction((parsed, ct) => Run(parsed, async (store, output, error) =>
        {
            var message = await store.GetAsync(parsed.GetValue(id)!, ct);
            if (message is null)
                return NoSuch(error, parsed.GetValue(id)!);
            var e = message.Envelope;
            output.WriteLine($"Id: {message.Id}");
            output.WriteLine($"Queued: {Stamp(message.CreatedAt)}");
            output.WriteLine($"Release: {Stamp(e.ReleaseAt)}");
            output.WriteLine($"Sender: <{e.Sender}>");
            output.WriteLine($"Notify: {e.NotifyAddress ?? "-"}");
            output.WriteLine($"Size: {message.BodySize}");
            output.WriteLine($"Needs: {(e.Needs8BitMime ? "8BITMIME " : "")}{(e.NeedsSmtpUtf8 ? "SMTPUTF8" : "")}".TrimEnd());
            foreach (var r in message.Recipients)
                output.WriteLine($"Recipient: {r.Address}\t{r.State.ToString().ToLowerInvariant()}\tattempts={r.Attempts}" +
                    $"\tnext={Stamp(r.NextAttempt)}\t{r.LastError ?? ""}".TrimEnd());
            output.WriteLine();
            await using var body = await store.OpenBodyAsync(message.Id, ct);
            foreach (var header in HeaderList.Load(body))
                output.WriteLine(header.ToString());
            return Cli.Ok;
        }));

        var all = new Option<bool>("--all") { Description = "retry every queued message" };
        var optionalId = new Argument<string?>("ID") { Description = "queue id", Arity = ArgumentArity.ZeroOrOne };
        var retry = new Command("retry", "Make a message (or --all) due now; a mixing hold is kept") { optionalId, all };
        retry.SetAction((parsed, ct) => Run(parsed, async (store, output, error) =>
        {
            var target = parsed.GetValue(optionalId);
            if (target is null == !parsed.GetValue(all))
            {
                error.WriteLine("error: give either an ID or --all");
                return Cli.Usage;
            }
            var count = await store.RetryAsync(target, DateTimeOffset.UtcNow, ct);
            if (target is not null && count == 0)
                return NoSuch(error, target);
            output.WriteLine($"{count} recipient(s) due now");
            return Cli.Ok;
        }));

        var delete = new Command("delete", "Remove a message from the queue without delivering it") { id };
        delete.SetAction((parsed, ct) => Run(parsed, async (store, output, error) =>
        {
            var target = parsed.GetValue(id)!;
            if (!await store.DeleteAsync(target, ct))
                return NoSuch(error, target);
            output.WriteLine($"message {target} deleted");
            return Cli.Ok;
        }));

        queue.Subcommands.Add(list);
        queue.Subcommands.Add(show);
        queue.Subcommands.Add(retry);
        queue.Subcommands.Add(delete);
        return queue;
    }

    private static async Task<int> Run(ParseResult parsed, Func<IDeliveryQueue, TextWriter, TextWriter, Task<int>> action)
    {
        var (output, error) = (parsed.InvocationConfiguration.Output, parsed.InvocationConfiguration.Error);
        var options = Cli.LoadOptions(parsed, error);
        if (options is null)
            return Cli.Refused;
        if (!File.Exists(Path.Combine(options.DataPath, "queue.db")))
        {
            if (parsed.CommandResult.Command.Name != "list")
            {
                error.WriteLine("error: there is no queue in DataDirectory yet");
                return Cli.Refused;
            }
            output.WriteLine("0 message(s)");
            return Cli.Ok;
        }
        await using var store = new SqliteQueueStore(options.DataPath, recover: false);
        return await action(store, output, error);
    }

    private static int NoSuch(TextWriter error, string id)
    {
        error.WriteLine($"error: no queued message {id}");
        return Cli.Refused;
    }

    private static string Stamp(DateTimeOffset t) =>
        t.ToUniversalTime().ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);

    private static string Age(TimeSpan age) => age.TotalDays >= 1 ? $"{(int)age.TotalDays}d{age.Hours}h"
        : age.TotalHours >= 1 ? $"{(int)age.TotalHours}h{age.Minutes}m"
        : age.TotalMinutes >= 1 ? $"{(int)age.TotalMinutes}m{age.Seconds}s" : $"{Math.Max(0, (int)age.TotalSeconds)}s";
}
