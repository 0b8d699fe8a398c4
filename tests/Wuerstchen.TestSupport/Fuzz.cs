using System.Diagnostics;
using CsCheck;

namespace Wuerstchen.Models.Tests;

/// <summary>
/// Property-based fuzzing with a fixed seed and a bounded count: every input drawn from a CsCheck generator must end
/// normally or with one of the documented exception types, allocate within a bound and return within a bound. The count
/// of inputs tried (and how many were refused: with a documented exception, or, for code that answers bad input instead
/// of throwing, with an error answer, <see cref="RunAnswers{T}"/>) goes to <see cref="ReliabilityLog"/>.
/// </summary>
public static class Fuzz
{
    public const ulong Seed = 20261130;

    public sealed record Limits(long MaxBytesPerInput = 256L << 20, double MaxSecondsPerInput = 20);

    /// <param name="documented">The exception types the code under test documents for bad input (subclasses included).</param>
    public static void Run<T>(string target, Gen<T> gen, int count, Action<T> property, Type[] documented, Func<T, string> describe, Limits? limits = null) =>
        RunAnswers(target, gen, count, input =>
        {
            property(input);
            return false;
        }, documented, describe, limits);

    /// <param name="refuses">Runs the code under test on one input and says whether it answered with an error (a refusal that is not an exception).</param>
    public static void RunAnswers<T>(string target, Gen<T> gen, int count, Func<T, bool> refuses, Type[] documented, Func<T, string> describe, Limits? limits = null)
    {
        limits ??= new Limits();
        var pcg = new PCG(1, Seed);
        int refused = 0;
        double slowest = 0;
        long largest = 0;
        for (int i = 0; i < count; i++)
        {
            T input = gen.Generate(pcg, null!, out _);
            long allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
            var watch = Stopwatch.StartNew();
            try
            {
                if (refuses(input))
                    refused++;
            }
            catch (Exception e) when (documented.Any(t => t.IsInstanceOfType(e)))
            {
                refused++;
            }
            catch (Exception e)
            {
                Assert.Fail($"fuzz {target}: input {i} (seed {Seed}) threw an undocumented {e.GetType().FullName}: {e.Message}\ninput: {Shorten(describe(input))}\n{e}");
            }
            double seconds = watch.Elapsed.TotalSeconds;
            long allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
            slowest = Math.Max(slowest, seconds);
            largest = Math.Max(largest, allocated);
            Assert.True(seconds <= limits.MaxSecondsPerInput, $"fuzz {target}: input {i} took {seconds:F1} s (limit {limits.MaxSecondsPerInput} s): {Shorten(describe(input))}");
            Assert.True(allocated <= limits.MaxBytesPerInput, $"fuzz {target}: input {i} allocated {allocated >> 20} MiB (limit {limits.MaxBytesPerInput >> 20} MiB): {Shorten(describe(input))}");
        }
        ReliabilityLog.Record($"fuzz {target}: {count} inputs tried (seed {Seed}), {refused} refused with documented errors (an exception or an error answer), 0 undocumented; slowest {slowest * 1000:F0} ms, most allocated {largest / 1024.0 / 1024:F1} MiB");
    }

    /// <summary>Flips, inserts, deletes or overwrites a few bytes of one of <paramref name="seeds"/>: inputs near valid ones reach deeper.</summary>
    public static Gen<byte[]> Mutations(params byte[][] seeds) =>
        Gen.Select(Gen.Int[0, seeds.Length - 1], Gen.Int[1, 8], Gen.UInt.Array[24], (which, edits, draws) =>
        {
            var bytes = new List<byte>(seeds[which]);
            for (int e = 0; e < edits; e++)
            {
                uint draw = draws[e * 3 % draws.Length];
                int at = bytes.Count == 0 ? 0 : (int)(draws[(e * 3 + 1) % draws.Length] % (uint)bytes.Count);
                byte value = (byte)draws[(e * 3 + 2) % draws.Length];
                switch (draw % 5)
                {
                    case 0 when bytes.Count > 0:
                        bytes[at] ^= (byte)(1 << (int)(value % 8));
                        break;
                    case 1:
                        bytes.Insert(at, value);
                        break;
                    case 2 when bytes.Count > 0:
                        bytes.RemoveAt(at);
                        break;
                    case 3 when bytes.Count > 0:
                        bytes[at] = value is < 128 ? (byte)0xFF : (byte)0;
                        break;
                    default:
                        if (bytes.Count > 0)
                            bytes.RemoveRange(at, bytes.Count - at);
                        break;
                }
            }
            return bytes.ToArray();
        });

    public static string Hex(byte[] bytes) => Convert.ToHexString(bytes.AsSpan(0, Math.Min(bytes.Length, 256))) + (bytes.Length > 256 ? $"… ({bytes.Length} bytes)" : "");

    private static string Shorten(string text) => text.Length <= 600 ? text : text[..600] + "…";
}
