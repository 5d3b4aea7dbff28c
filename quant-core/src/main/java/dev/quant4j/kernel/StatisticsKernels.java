package dev.quant4j.kernel;

/**
 * Statistics of float arrays: finiteness, extremes, and the sums of the error metrics. Implemented by {@link
 * ScalarStatisticsKernels} (the reference) and {@code VectorStatisticsKernels}; integer results and extremes are
 * identical, float sums differ by rounding only (accumulated in float within one call).
 */
public interface StatisticsKernels {

    /** Whether every value of {@code x[off, off+len)} is finite (no NaN, no infinity). */
    boolean allFinite(float[] x, int off, int len);

    /**
     * Minimum and maximum of {@code x[off, off+len)}, {@code len >= 1}, packed by {@link #packMinMax}; read them with
     * {@link #min(long)} and {@link #max(long)}. For finite input only (check with {@link #allFinite} first): NaN is
     * ignored or not, depending on the implementation. Zeros compare equal: the sign of a zero result is unspecified.
     */
    long minMax(float[] x, int off, int len);

    /** Largest absolute value of {@code x[off, off+len)}; 0 for {@code len == 0}. For finite input only. */
    float absMax(float[] x, int off, int len);

    /** Sum of {@code x[i]^2}. */
    float sumSquares(float[] x, int off, int len);

    /** Index in the {@link #diffStats} result: sum of {@code (a[i] - b[i])^2}. */
    int SUM_SQ_DIFF = 0;

    /** Sum of {@code |a[i] - b[i]|}. */
    int SUM_ABS_DIFF = 1;

    /** Largest {@code |a[i] - b[i]|} (0 for {@code len == 0}). */
    int MAX_ABS_DIFF = 2;

    /** Sum of {@code a[i]^2}. */
    int SUM_SQ_A = 3;

    /** Sum of {@code b[i]^2}. */
    int SUM_SQ_B = 4;

    /** Sum of {@code a[i] * b[i]}. */
    int SUM_AB = 5;

    /**
     * Everything the error metrics need from a reference {@code a} and an approximation {@code b}, in one pass: writes
     * the six sums indexed by {@link #SUM_SQ_DIFF} ... {@link #SUM_AB} to {@code out[0..5]}.
     */
    void diffStats(float[] a, int aOff, float[] b, int bOff, int len, float[] out);

    /** Packs a minimum and a maximum into one long (no allocation in hot loops). */
    static long packMinMax(float min, float max) {
        return ((long) Float.floatToRawIntBits(min) << 32) | (Float.floatToRawIntBits(max) & 0xFFFFFFFFL);
    }

    /** The minimum of a {@link #minMax} result. */
    static float min(long minMax) {
        return Float.intBitsToFloat((int) (minMax >>> 32));
    }

    /** The maximum of a {@link #minMax} result. */
    static float max(long minMax) {
        return Float.intBitsToFloat((int) minMax);
    }
}
