using System.Globalization;
using System.Text;

namespace Sombra.Submission;

/// <summary>
/// Unicode Normalization Form C (UAX #15), for canonical opt-out addresses. Sombra runs with
/// InvariantGlobalization, where <see cref="string.Normalize()"/> leaves non-ASCII text as it is
/// and <see cref="IdnMapping"/> does no mapping, so the tables come with us (Nfc.data, made by
/// tools/unicode-nfc.py).
/// </summary>
internal static class Nfc
{
    // Hangul syllables decompose and compose by arithmetic (Unicode section 3.12).
    private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
    private const int LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

    private static readonly Dictionary<int, int> Classes = [];
    private static readonly Dictionary<int, int[]> Decompositions = [];
    private static readonly Dictionary<(int, int), int> Compositions = [];

    static Nfc()
    {
        using var stream = typeof(Nfc).Assembly.GetManifestResourceStream("Sombra.Submission.Nfc.data")!;
        using var reader = new StreamReader(stream);
        while (reader.ReadLine() is { } line)
        {
            var f = line.Split(' ');
            if (f[0] == "c")
                for (var cp = Hex(f[1]); cp <= Hex(f[2]); cp++)
                    Classes[cp] = int.Parse(f[3], CultureInfo.InvariantCulture);
            else if (f[0] == "d")
            {
                var parts = f.Skip(2).Where(p => p != "+").Select(Hex).ToArray();
                Decompositions[Hex(f[1])] = parts;
                if (f[^1] == "+")
                    Compositions[(parts[0], parts[1])] = Hex(f[1]);
            }
        }
    }

    public static string Normalize(string text)
    {
        if (text.All(char.IsAscii))
            return text;
        var cps = new List<int>();
        foreach (var rune in text.EnumerateRunes())
            Decompose(rune.Value, cps);
        Reorder(cps);
        Compose(cps);
        var result = new StringBuilder(text.Length);
        foreach (var cp in cps)
            result.Append(char.ConvertFromUtf32(cp));
        return result.ToString();
    }

    private static void Decompose(int cp, List<int> output)
    {
        var s = cp - SBase;
        if (s is >= 0 and < SCount)
        {
            output.Add(LBase + s / NCount);
            output.Add(VBase + s % NCount / TCount);
            if (s % TCount != 0)
                output.Add(TBase + s % TCount);
        }
        else if (Decompositions.TryGetValue(cp, out var parts))
            foreach (var part in parts)
                Decompose(part, output);
        else
            output.Add(cp);
    }

    /// <summary>Canonical ordering: marks between two starters sorted by class, stably.</summary>
    private static void Reorder(List<int> cps)
    {
        for (var i = 1; i < cps.Count; i++)
        {
            var cls = Class(cps[i]);
            if (cls == 0)
                continue;
            for (var j = i; j > 0 && Class(cps[j - 1]) > cls; j--)
                (cps[j - 1], cps[j]) = (cps[j], cps[j - 1]);
        }
    }

    /// <summary>Canonical composition: each mark joins the last starter unless something blocks it.</summary>
    private static void Compose(List<int> cps)
    {
        var starter = 0;
        var lastClass = Class(cps[0]) == 0 ? 0 : 256; // a leading mark has no starter to join
        var kept = 1;
        for (var i = 1; i < cps.Count; i++)
        {
            var cp = cps[i];
            var cls = Class(cp);
            if ((lastClass < cls || lastClass == 0) && Composite(cps[starter], cp) is { } composite)
            {
                cps[starter] = composite;
                continue;
            }
            if (cls == 0)
                starter = kept;
            lastClass = cls;
            cps[kept++] = cp;
        }
        cps.RemoveRange(kept, cps.Count - kept);
    }

    private static int? Composite(int first, int second)
    {
        if (first - LBase is >= 0 and < LCount && second - VBase is >= 0 and < VCount)
            return SBase + ((first - LBase) * VCount + second - VBase) * TCount;
        var s = first - SBase;
        if (s is >= 0 and < SCount && s % TCount == 0 && second - TBase is > 0 and < TCount)
            return first + second - TBase;
        return Compositions.TryGetValue((first, second), out var composite) ? composite : null;
    }

    private static int Class(int cp) => Classes.GetValueOrDefault(cp);

    private static int Hex(string text) => int.Parse(text, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
}
