namespace Sombra.Tests.Support;

/// <summary>
/// Tests that measure the whole process (allocations, memory) run alone, so that other tests'
/// work does not count against them.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SerialCollection
{
    public const string Name = "serial";
}
