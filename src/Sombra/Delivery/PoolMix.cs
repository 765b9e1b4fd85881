using System.Security.Cryptography;
using Sombra.Hosting;
using Sombra.Queue;

namespace Sombra.Delivery;

/// <summary>
/// A timed dynamic pool in the manner of the Mixmaster remailers (issue 6): new messages are
/// stored held (<see cref="QueueEnvelope.Pooled"/>); every PoolInterval, when more than
/// PoolMinSize of them have passed their mixing delay, a PoolRate share of the excess is let go,
/// chosen at random rather than oldest first, so that neither the moment nor the order of leaving
/// follows the order of arrival. Retries are not pooled: they were mixed on their first attempt.
/// </summary>
/// <remarks>
/// <para>The pool is the queue, so it survives a restart, and a release is written to it before
/// the message is sent. Only the time of the next round is kept in memory; it starts a full
/// interval after start-up, so a restart never flushes the pool at once.</para>
/// <para>A pool never shrinks below PoolMinSize by itself, and at a quiet relay the last few
/// messages would wait for others indefinitely. PoolMaxWait bounds that: a message held that
/// long after its mixing delay leaves in the next round whatever the pool's size.</para>
/// </remarks>
public sealed class PoolMix(SombraOptions options, TimeProvider time)
{
    private readonly MixingOptions _mixing = options.Mixing;

    public DateTimeOffset NextRound { get; private set; } = time.GetUtcNow() + options.Mixing.PoolInterval;

    /// <summary>Runs a round when one is due; returns how many messages it let go.</summary>
    public async Task<int> RoundAsync(IDeliveryQueue store, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (now < NextRound)
            return 0;
        NextRound = now + _mixing.PoolInterval;

        var pool = await store.FindPooledAsync(now, cancellationToken);
        var overdue = pool.Where(m => now - m.ReleaseAt >= _mixing.PoolMaxWait).Select(m => m.Id).ToList();
        var candidates = pool.Where(m => now - m.ReleaseAt < _mixing.PoolMaxWait).Select(m => m.Id).ToArray();

        var chosen = new List<string>(overdue);
        var excess = pool.Count - _mixing.PoolMinSize;
        if (excess > 0)
        {
            // PoolRate of the excess, with the fraction settled by chance so that small pools
            // leave at the configured rate on average instead of never.
            var share = excess * _mixing.PoolRate;
            var fraction = share - Math.Floor(share);
            var count = (int)share + (RandomNumberGenerator.GetInt32(1_000_000) < fraction * 1_000_000 ? 1 : 0);
            RandomNumberGenerator.Shuffle(candidates.AsSpan());
            chosen.AddRange(candidates.Take(Math.Max(0, count - overdue.Count)));
        }
        await store.ReleasePooledAsync(chosen, cancellationToken);
        return chosen.Count;
    }
}
