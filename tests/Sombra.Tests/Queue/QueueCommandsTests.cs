using System.Text;
using System.Text.Json;
using Sombra.Hosting;
using Sombra.Queue;
using Sombra.Tests.Support;

namespace Sombra.Tests.Queue;

public sealed class QueueCommandsTests
{
    private static async Task<(int Code, string Output, string Error)> Run(string config, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await Cli.RunAsync([.. args, "--config", config], output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task List_show_retry_and_delete_work_beside_an_open_store()
    {
        var ct = TestContext.Current.CancellationToken;
        var data = TempDirectory.Create("queue-cli");
        var config = Path.Combine(data, "sombra.json");
        File.WriteAllText(config, JsonSerializer.Serialize(new { HostName = "relay.test", DataDirectory = data }));

        // The relay's own store stays open, as it would be while the relay runs.
        await using var relay = new SqliteQueueStore(data);
        await relay.InitializeAsync(ct);
        string id;
        await using (var incoming = relay.CreateIncoming())
        {
            await incoming.Body.WriteAsync(Encoding.UTF8.GetBytes("Subject: hello\r\nX-Test: 1\r\n\r\nbody\r\n"), ct);
            id = await relay.CommitAsync(incoming, new QueueEnvelope("anonymous@relay.test",
                ["a@one.test", "b@two.test"], null, [], DateTimeOffset.UtcNow, false, false), ct);
        }
        await relay.RecordAsync(id, [new RecipientOutcome(1, RecipientState.Pending,
            DateTimeOffset.UtcNow.AddHours(1), "451 4.2.0 busy")], ct);

        var list = await Run(config, "queue", "list");
        Assert.Equal(0, list.Code);
        var row = Assert.Single(list.Output.Split('\n'), l => l.StartsWith(id));
        Assert.Contains("one.test,two.test", row);
        Assert.Contains("451 4.2.0 busy", row);
        Assert.Contains("\t1\t", row);

        var show = await Run(config, "queue", "show", id);
        Assert.Equal(0, show.Code);
        Assert.Contains("Sender: <anonymous@relay.test>", show.Output);
        Assert.Contains("Recipient: b@two.test\tpending\tattempts=1", show.Output);
        Assert.Contains("Subject: hello", show.Output);
        Assert.DoesNotContain("body", show.Output);

        Assert.Equal(0, (await Run(config, "queue", "retry", id)).Code);
        Assert.All((await relay.GetAsync(id, ct))!.Recipients, r => Assert.True(r.NextAttempt <= DateTimeOffset.UtcNow));
        Assert.Equal(Cli.Usage, (await Run(config, "queue", "retry")).Code);
        Assert.Equal(0, (await Run(config, "queue", "retry", "--all")).Code);

        Assert.Equal(0, (await Run(config, "queue", "delete", id)).Code);
        Assert.Null(await relay.GetAsync(id, ct));
        Assert.Equal(Cli.Refused, (await Run(config, "queue", "delete", id)).Code);
        Assert.Contains("0 message(s)", (await Run(config, "queue", "list")).Output);
    }
}
