package dev.quant4j.kernel;

import static dev.quant4j.kernel.VectorShapes.F;
import static dev.quant4j.kernel.VectorShapes.I;
import static dev.quant4j.kernel.VectorShapes.sumLanes;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

/**
 * {@link StatisticsKernels} on the Vector API. Every kernel is a vector body over {@code F.loopBound(len)} and the
 * scalar code for the tail: finiteness, minima, maxima and absolute maxima are exact (a NaN difference is {@code
 * diffStats}' maximum, as in the reference), the sums of {@code diffStats} keep one accumulator per sum and differ
 * from the reference by rounding only.
 */
final class VectorStatisticsKernels implements StatisticsKernels {

    private static final BlasKernels BLAS = new VectorBlasKernels();

    @Override
    public boolean allFinite(float[] x, int off, int len) {
        int i = 0;
        int step = F.length();
        // v * 0 is 0 for a finite v and NaN otherwise; sums of the probes stay 0 unless one is NaN
        FloatVector p1 = FloatVector.zero(F);
        FloatVector p2 = FloatVector.zero(F);
        int bound2 = len - len % (2 * step);
        for (; i < bound2; i += 2 * step) {
            p1 = FloatVector.fromArray(F, x, off + i).mul(0f).add(p1);
            p2 = FloatVector.fromArray(F, x, off + i + step).mul(0f).add(p2);
        }
        boolean finite = FloatVector.zero(F).add(p1).add(p2).reduceLanes(VectorOperators.ADD) == 0f;
        // scalar tail
        for (; i < len; i++) {
            finite &= Float.isFinite(x[off + i]);
        }
        return finite;
    }

    /** The vector body is {@link VectorStatisticsUnrolled#minMax} (generated: its reduction steps are unrolled). */
    @Override
    public long minMax(float[] x, int off, int len) {
        return VectorStatisticsUnrolled.minMax(x, off, len);
    }

    @Override
    public float absMax(float[] x, int off, int len) {
        int i = 0;
        float m = 0f;
        int bound = F.loopBound(len);
        if (bound > 0) {
            FloatVector acc = FloatVector.zero(F);
            for (; i < bound; i += F.length()) {
                FloatVector v = FloatVector.fromArray(F, x, off + i).abs();
                acc = v.blend(acc, v.compare(VectorOperators.LE, acc)); // as in minMax: finite input
            }
            // all lanes are >= 0, so MAX is exact whatever its rules for NaN and signed zeros (and max with 0 is a
            // no-op that makes the receiver a fresh vector, not the loop's)
            m = FloatVector.zero(F).max(acc).reduceLanes(VectorOperators.MAX);
        }
        // scalar tail
        return ScalarStatisticsKernels.absMaxLoop(x, off, i, len, m);
    }

    /** {@link VectorBlasKernels#dot} of {@code x} with itself. */
    @Override
    public float sumSquares(float[] x, int off, int len) {
        return BLAS.dot(x, off, x, off, len);
    }

    @Override
    public void diffStats(float[] a, int aOff, float[] b, int bOff, int len, float[] out) {
        int i = 0;
        FloatVector sqDiff = FloatVector.zero(F);
        FloatVector absDiff = FloatVector.zero(F);
        // |d| as bits: a float's magnitude orders as its bits do, so the largest is one integer maximum a lane (a
        // one-cycle instruction, where a float comparison and blend put several cycles on the loop's longest chain);
        // a NaN's bits are above every magnitude's, so a NaN difference is the maximum, as in Math.max
        IntVector maxAbsBits = IntVector.zero(I);
        FloatVector sqA = FloatVector.zero(F);
        FloatVector sqB = FloatVector.zero(F);
        FloatVector ab = FloatVector.zero(F);
        int bound = F.loopBound(len);
        for (; i < bound; i += F.length()) {
            FloatVector x = FloatVector.fromArray(F, a, aOff + i);
            FloatVector y = FloatVector.fromArray(F, b, bOff + i);
            FloatVector d = x.sub(y);
            FloatVector ad = d.abs();
            sqDiff = d.fma(d, sqDiff);
            absDiff = ad.add(absDiff);
            maxAbsBits = ((IntVector) ad.reinterpretAsInts()).max(maxAbsBits);
            sqA = x.fma(x, sqA);
            sqB = y.fma(y, sqB);
            ab = x.fma(y, ab);
        }
        float[] tail = new float[6];
        // scalar tail
        ScalarStatisticsKernels.diffStatsLoop(a, aOff + i, b, bOff + i, len - i, tail);
        out[SUM_SQ_DIFF] = sumLanes(sqDiff) + tail[SUM_SQ_DIFF];
        out[SUM_ABS_DIFF] = sumLanes(absDiff) + tail[SUM_ABS_DIFF];
        out[MAX_ABS_DIFF] =
                Math.max(Float.intBitsToFloat(maxAbsBits.reduceLanes(VectorOperators.MAX)), tail[MAX_ABS_DIFF]);
        out[SUM_SQ_A] = sumLanes(sqA) + tail[SUM_SQ_A];
        out[SUM_SQ_B] = sumLanes(sqB) + tail[SUM_SQ_B];
        out[SUM_AB] = sumLanes(ab) + tail[SUM_AB];
    }
}
