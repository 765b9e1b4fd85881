using BenchmarkDotNet.Running;
using Sombra.Bench;

// Arguments go to BenchmarkDotNet (e.g. --job short). After the run, one line per benchmark
// "MBps NAME VALUE" (MB = 10^6 bytes, from the mean time per scrub) for bench/run to read.
var summary = BenchmarkRunner.Run<AnonymizerBench>(args: args);
var failed = false;
foreach (var report in summary.Reports)
{
    var name = report.BenchmarkCase.Descriptor.WorkloadMethod.Name;
    if (report.ResultStatistics is not { } statistics)
    {
        Console.WriteLine($"MBps {name} failed");
        failed = true;
        continue;
    }
    var bytes = AnonymizerBench.Sizes[name];
    Console.WriteLine($"MBps {name} {bytes / statistics.Mean * 1e9 / 1e6:F1} ({bytes} bytes)");
}
return failed || summary.Reports.Length == 0 ? 1 : 0;
