using System.Net;
using BenchmarkDotNet.Attributes;
using Sombra.Anonymity;
using Sombra.Hosting;

namespace Sombra.Bench;

/// <summary>
/// Scenario 6 of issue 5: the anonymizer alone, from bytes in memory to bytes in memory, so that
/// neither the network nor the disk is in the figure.
/// </summary>
[MemoryDiagnoser]
public class AnonymizerBench
{
    private static readonly SessionFacts Facts = new(
        IPAddress.Loopback, "client.example", Account: null, Tls: false, Esmtp: true, ["b@dest.example"]);

    private Anonymizer _anonymizer = null!;
    private byte[] _desktop = null!;
    private byte[] _attachments = null!;
    private MemoryStream _output = null!;

    public static IReadOnlyDictionary<string, int> Sizes { get; } = new Dictionary<string, int>
    {
        [nameof(Desktop4K)] = SampleMessages.Desktop4K().Length,
        [nameof(Attachments10M)] = SampleMessages.WithAttachments10M().Length,
    };

    [GlobalSetup]
    public void Setup()
    {
        // The relay's own defaults, as ConfigLoader leaves them for a file that sets nothing.
        var options = new SombraOptions();
        ConfigLoader.ApplyListDefaults(options);
        var errors = ConfigValidator.Validate(options);
        if (errors.Count > 0)
            throw new InvalidOperationException(string.Join("; ", errors));
        ConfigLoader.ApplyDerivedDefaults(options);
        _anonymizer = new Anonymizer(options, senderKey: null);
        _desktop = SampleMessages.Desktop4K();
        _attachments = SampleMessages.WithAttachments10M();
        _output = new MemoryStream(_attachments.Length * 2);
        // A refusal takes a different, shorter path: measuring it would flatter the figure.
        foreach (var input in new[] { _desktop, _attachments })
        {
            var result = Scrub(input).GetAwaiter().GetResult();
            if (!result.Accepted)
                throw new InvalidOperationException("sample refused: " + result.Refusal);
        }
    }

    [Benchmark]
    public Task<ScrubResult> Desktop4K() => Scrub(_desktop);

    [Benchmark]
    public Task<ScrubResult> Attachments10M() => Scrub(_attachments);

    private Task<ScrubResult> Scrub(byte[] input)
    {
        _output.SetLength(0);
        return _anonymizer.ScrubAsync(new MemoryStream(input, writable: false), _output, Facts,
            CancellationToken.None);
    }
}
