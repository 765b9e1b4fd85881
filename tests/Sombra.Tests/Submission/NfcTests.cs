using System.Text;
using System.Text.Json;
using Sombra.Submission;
using Sombra.Tests.Support;

namespace Sombra.Tests.Submission;

/// <summary>Sombra's own NFC (the runtime's is off under InvariantGlobalization) agrees with Python's.</summary>
public sealed class NfcTests
{
    [Fact]
    public async Task AgreesWithPythonOnEveryCodePointAndOnRandomSequences()
    {
        var singles = Enumerable.Range(0, 0x30000).Where(cp => cp is < 0xD800 or > 0xDFFF)
            .Select(char.ConvertFromUtf32);

        // Sequences that exercise ordering and composition: bases, precomposed letters, marks
        // of several classes, Hangul jamo and syllables.
        var pool = "aeiouAEOnNcCszZ\u00e9\u00c5\u1e0b\u0300\u0301\u0308\u0323\u0327\u0328\u031b\u0345\u05b0\u0591"
            + "\u1100\u1112\u1161\u1175\u11a8\u11c2\u11a7\uac00\uac01\ud7a3\u0b47\u0b3e\u0b57\u1026\u102e\u0f71\u0f72";
        var random = new Random(6);
        var sequences = Enumerable.Range(0, 5000).Select(_ =>
            new string(Enumerable.Range(0, random.Next(1, 9)).Select(_ => pool[random.Next(pool.Length)]).ToArray()));
        var inputs = singles.Concat(sequences).ToArray();

        var file = Path.Combine(TempDirectory.Create("nfc"), "in.json");
        await File.WriteAllTextAsync(file, JsonSerializer.Serialize(inputs));
        var python = await Tools.RunAsync(Tools.Require(Tools.Python), ["-c",
            "import json,sys,unicodedata; print(json.dumps([unicodedata.normalize('NFC', s) "
            + "for s in json.load(open(sys.argv[1]))]))", file]);
        Assert.True(python.ExitCode == 0, python.Error);
        var expected = JsonSerializer.Deserialize<string[]>(python.Output)!;

        var wrong = inputs.Select((s, i) => (s, i)).Where(x => Nfc.Normalize(x.s) != expected[x.i]).Take(5)
            .Select(x => $"{Hex(x.s)} -> {Hex(Nfc.Normalize(x.s))}, expected {Hex(expected[x.i])}").ToList();
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    private static string Hex(string s) => string.Join(' ', s.EnumerateRunes().Select(r => r.Value.ToString("X4")));
}
