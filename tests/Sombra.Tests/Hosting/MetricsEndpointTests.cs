using System.Text.Json;
using Sombra.Tests.Support;

namespace Sombra.Tests.Hosting;

[Collection(SerialCollection.Name)]
public sealed class MetricsEndpointTests
{
    [Fact]
    public async Task Metrics_Endpoint_serves_Prometheus_text_without_names()
    {
        var port = PostfixSink.FreePort();
        var config = Path.Combine(TempDirectory.Create("metrics"), "sombra.json");
        File.WriteAllText(config, JsonSerializer.Serialize(new
        {
            HostName = "relay.test",
            DataDirectory = TempDirectory.Create("metrics-data"),
            Submission = new { Endpoints = new[] { new { Address = "127.0.0.1:0", Tls = "none" } } },
            Metrics = new { Endpoint = $"127.0.0.1:{port}" },
        }));
        await using var relay = await RelayProcess.StartAsync(config);

        using var http = new HttpClient();
        string text = "";
        // Until the listener is up it refuses; just after, a scrape can come back empty. Either
        // way, wait a little before asking again, or fifty quick empty answers end the loop.
        for (var i = 0; i < 100 && !text.Contains("sombra_queue_depth"); i++)
        {
            try
            {
                text = await http.GetStringAsync($"http://127.0.0.1:{port}/metrics", TestContext.Current.CancellationToken);
            }
            catch (HttpRequestException)
            {
            }
            if (!text.Contains("sombra_queue_depth"))
                await Task.Delay(100, TestContext.Current.CancellationToken);
        }
        Assert.Contains("sombra_queue_depth", text);
        Assert.Contains("sombra_queue_oldest_age", text);
        // The machine's name as a word (a short name could occur inside a random boundary).
        Assert.DoesNotMatch(@"(?<![\w=+/.-])" + System.Text.RegularExpressions.Regex.Escape(System.Net.Dns.GetHostName())
            + @"(?![\w=+/-])", text);
        Assert.Equal(0, await relay.TerminateAsync());
    }
}
