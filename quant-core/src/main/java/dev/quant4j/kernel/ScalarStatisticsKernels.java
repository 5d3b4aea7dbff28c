package dev.quant4j.kernel;

/** The plain loops of {@link StatisticsKernels}: the reference the vector kernels are tested against, and the fallback. */
final class ScalarStatisticsKernels implements StatisticsKernels {

    @Override
    public boolean allFinite(float[] x, int off, int len) {
        for (int i = 0; i < len; i++) {
            if (!Float.isFinite(x[off + i])) {
                return false;
            }
        }
        return true;
    }

    @Override
    public long minMax(float[] x, int off, int len) {
        assert len >= 1;
        return minMaxLoop(x, off, 1, len, x[off], x[off]);
    }

    /**
     * {@link #minMax}'s loop over {@code x[off + from, off + len)}, from a minimum and a maximum found so far; the
     * vector kernel's scalar tail.
     */
    static long minMaxLoop(float[] x, int off, int from, int len, float min, float max) {
        for (int i = from; i < len; i++) {
            float v = x[off + i];
            min = v < min ? v : min;
            max = v > max ? v : max;
        }
        return StatisticsKernels.packMinMax(min, max);
    }

    @Override
    public float absMax(float[] x, int off, int len) {
        return absMaxLoop(x, off, 0, len, 0f);
    }

    /** {@link #absMax}'s loop over {@code x[off + from, off + len)}, from a maximum found so far; the vector tail. */
    static float absMaxLoop(float[] x, int off, int from, int len, float m) {
        for (int i = from; i < len; i++) {
            float v = Math.abs(x[off + i]);
            m = v > m ? v : m;
        }
        return m;
    }

    @Override
    public float sumSquares(float[] x, int off, int len) {
        return ScalarBlasKernels.dotLoop(x, off, x, off, len);
    }

    @Override
    public void diffStats(float[] a, int aOff, float[] b, int bOff, int len, float[] out) {
        diffStatsLoop(a, aOff, b, bOff, len, out);
    }

    /** {@link #diffStats}' loop; the vector kernel's scalar tail. */
    static void diffStatsLoop(float[] a, int aOff, float[] b, int bOff, int len, float[] out) {
        float sqDiff = 0f;
        float absDiff = 0f;
        float maxAbs = 0f;
        float sqA = 0f;
        float sqB = 0f;
        float ab = 0f;
        for (int i = 0; i < len; i++) {
            float x = a[aOff + i];
            float y = b[bOff + i];
            float d = x - y;
            sqDiff = Math.fma(d, d, sqDiff);
            absDiff += Math.abs(d);
            maxAbs = Math.max(maxAbs, Math.abs(d));
            sqA = Math.fma(x, x, sqA);
            sqB = Math.fma(y, y, sqB);
            ab = Math.fma(x, y, ab);
        }
        out[SUM_SQ_DIFF] = sqDiff;
        out[SUM_ABS_DIFF] = absDiff;
        out[MAX_ABS_DIFF] = maxAbs;
        out[SUM_SQ_A] = sqA;
        out[SUM_SQ_B] = sqB;
        out[SUM_AB] = ab;
    }
}
