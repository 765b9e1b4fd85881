using System.Security.Cryptography;
using Sombra.Hosting;
using Sombra.Queue;

namespace Sombra.Delivery;

/// <summary>
/// A timed dynamic pool in the manner of the Mixmaster remailers (issue 6): messages that have
/// never been tried wait in the pool; every PoolInterval, when more than PoolMinSize wait, a
/// random PoolRate share of the excess leaves, chosen at random rather than oldest first, so
/// that neither the moment nor the order of leaving follows the order of arrival. Retries are
/// not pooled: they were mixed on their first attempt.
/// </summary>
/// <remarks>
/// The pool itself is the queue, so it survives a restart; only the time of the next round is
/// kept in memory, and it starts a full interval after start-up, so a restart never flushes
/// the pool at once.
/// </remarks>
public sealed class PoolMix(SombraOptions options, TimeProvider time) : IReleasePolicy
{
    private readonly MixingOptions _mixing = options.Mixing;
    private DateTimeOffset _nextRound = time.GetUtcNow() + options.Mixing.PoolInterval;

    public IReadOnlyList<DueMessage> Select(IReadOnlyList<DueMessage> candidates, DateTimeOffset now)
    {
        var retries = candidates.Where(m => m.Attempts > 0).ToList();
        if (now < _nextRound)
            return retries;
        _nextRound = now + _mixing.PoolInterval;

        var pool = candidates.Where(m => m.Attempts == 0).ToArray();
        var excess = pool.Length - _mixing.PoolMinSize;
        if (excess <= 0)
            return retries;

        // PoolRate of the excess, with the fraction settled by chance so that small pools leave
        // at the configured rate on average instead of never.
        var share = excess * _mixing.PoolRate;
        var count = (int)share + (RandomNumberGenerator.GetInt32(1_000_000) < (share - (int)share) * 1_000_000 ? 1 : 0);
        RandomNumberGenerator.Shuffle(pool.AsSpan());
        return [.. retries, .. pool.Take(count)];
    }
}
