package dev.quant4j.quant;

import dev.quant4j.kernel.Kernels;
import dev.quant4j.kernel.QuantKernels;
import dev.quant4j.tensor.FloatMatrix;

/**
 * How far an approximation {@code x^} is from a reference {@code x}, over all elements.
 *
 * <p>Sums of one row are taken by the kernels in float, rows are summed in double.
 *
 * @param count number of elements
 * @param mse mean of {@code (x - x^)^2}
 * @param mae mean of {@code |x - x^|}
 * @param maxAbs largest {@code |x - x^|}
 * @param sqnrDb signal-to-quantization-noise ratio {@code 10 log10(sum x^2 / sum (x - x^)^2)}; {@code +Infinity} when
 *     the error is zero
 * @param cosine {@code <x, x^> / (|x| |x^|)}; 1 when both are zero, 0 when exactly one is
 */
public record ErrorMetrics(long count, double mse, double mae, double maxAbs, double sqnrDb, double cosine) {

    /** Root mean squared error. */
    public double rmse() {
        return Math.sqrt(mse);
    }

    /** Compares {@code reference} with the matrix the quantized weight {@code q} stands for (its dequantized form). */
    public static ErrorMetrics compare(FloatMatrix reference, QuantizedWeight q) {
        return new Accumulator().add(reference, q).result();
    }

    /** Compares {@code approx} with {@code reference}; shapes must be equal. */
    public static ErrorMetrics compare(FloatMatrix reference, FloatMatrix approx) {
        return compare(reference, approx, Kernels.get());
    }

    /** As {@link #compare(FloatMatrix, FloatMatrix)} with the given kernels (internal types: package-private). */
    static ErrorMetrics compare(FloatMatrix reference, FloatMatrix approx, QuantKernels k) {
        return new Accumulator(k).add(reference, approx).result();
    }

    /**
     * Sums errors over several pairs of matrices (the tensors of a model), so that the metrics are those of all their
     * elements together.
     */
    public static final class Accumulator {
        private final QuantKernels k;
        private long count;
        private double sqErr;
        private double absErr;
        private double maxAbs;
        private double signal;
        private double approxSq;
        private double dot;

        public Accumulator() {
            this(Kernels.get());
        }

        Accumulator(QuantKernels k) {
            this.k = k;
        }

        /** Adds the elements of one pair; shapes must be equal. */
        public Accumulator add(FloatMatrix reference, FloatMatrix approx) {
            requireSameShape(reference, approx);
            int cols = reference.cols();
            float[] a = reference.array();
            float[] b = approx.array();
            float[] sums = new float[6];
            for (int r = 0; r < reference.rows(); r++) {
                k.diffStats(a, reference.rowOffset(r), b, approx.rowOffset(r), cols, sums);
                addSums(sums);
            }
            count += reference.size();
            return this;
        }

        /**
         * Adds {@code reference[offset, offset + length)} against {@code approx[offset, offset + length)}, two flat runs
         * of values (a block of a matrix's rows, whatever its row length), summed as the rows of a matrix whose rows
         * are {@value #RUN} values (the last one shorter).
         */
        public Accumulator add(float[] reference, float[] approx, int offset, int length) {
            java.util.Objects.checkFromIndexSize(offset, length, reference.length);
            java.util.Objects.checkFromIndexSize(offset, length, approx.length);
            float[] sums = new float[6];
            for (int at = offset, end = offset + length; at < end; at += RUN) {
                k.diffStats(reference, at, approx, at, Math.min(RUN, end - at), sums);
                addSums(sums);
            }
            count += length;
            return this;
        }

        /** Adds one run's float sums ({@link QuantKernels#diffStats}'s) in double. */
        private void addSums(float[] sums) {
            sqErr += sums[QuantKernels.SUM_SQ_DIFF];
            absErr += sums[QuantKernels.SUM_ABS_DIFF];
            maxAbs = Math.max(maxAbs, sums[QuantKernels.MAX_ABS_DIFF]);
            signal += sums[QuantKernels.SUM_SQ_A];
            approxSq += sums[QuantKernels.SUM_SQ_B];
            dot += sums[QuantKernels.SUM_AB];
        }

        /** Values a flat run is summed in, in float, before it is added in double. */
        public static final int RUN = 4096;

        /**
         * Adds the elements of {@code reference} and of {@code q} dequantized, with the same sums as {@code add(reference,
         * q.dequantize())}: row by row, each row dequantized into a buffer that stays in cache, without a dequantized
         * copy of the whole weight. Shapes must be equal.
         */
        public Accumulator add(FloatMatrix reference, QuantizedWeight q) {
            if (reference.rows() != q.rows() || reference.cols() != q.cols()) {
                throw new IllegalArgumentException("shapes differ: '" + reference.name() + "' [" + reference.rows()
                        + ", " + reference.cols() + "] vs '" + q.name() + "' [" + q.rows() + ", " + q.cols() + "]");
            }
            int cols = q.cols();
            float[] row = new float[cols];
            byte[] codes = new byte[cols];
            for (int r = 0; r < q.rows(); r++) {
                switch (q) {
                    case QuantizedTensor t -> t.dequantizeRow(r, row, 0, codes);
                    case CodebookTensor c -> c.dequantizeRange((long) r * cols, cols, row, 0);
                }
                add(
                        FloatMatrix.of(reference.name(), 1, cols, reference.array(), reference.rowOffset(r)),
                        FloatMatrix.of(q.name(), 1, cols, row, 0));
            }
            return this;
        }

        /**
         * Adds everything {@code other} has summed (the sums are added, so merging the accumulators of blocks in a
         * fixed order gives the same result whichever threads filled them).
         */
        public Accumulator merge(Accumulator other) {
            sqErr += other.sqErr;
            absErr += other.absErr;
            maxAbs = Math.max(maxAbs, other.maxAbs);
            signal += other.signal;
            approxSq += other.approxSq;
            dot += other.dot;
            count += other.count;
            return this;
        }

        /** The metrics of everything added so far. */
        public ErrorMetrics result() {
            if (count == 0) {
                throw new IllegalStateException("no elements added");
            }
            double sqnr = sqErr == 0 ? Double.POSITIVE_INFINITY : 10 * Math.log10(signal / sqErr);
            double cosine;
            if (signal == 0 && approxSq == 0) {
                cosine = 1;
            } else if (signal == 0 || approxSq == 0) {
                cosine = 0;
            } else {
                cosine = dot / Math.sqrt(signal * approxSq);
            }
            return new ErrorMetrics(count, sqErr / count, absErr / count, maxAbs, sqnr, cosine);
        }
    }

    /**
     * Output error {@code ||X W^T - X Q^T||_F^2}: the squared error of the layer outputs for the activations {@code X
     * [n, in]}, with {@code W} and {@code Q} {@code [out, in]} (summed over all tokens and output channels).
     */
    public static double outputError(FloatMatrix w, FloatMatrix q, FloatMatrix x) {
        requireSameShape(w, q);
        if (x.cols() != w.cols()) {
            throw new IllegalArgumentException("activations '" + x.name() + "' have " + x.cols() + " columns, weight '"
                    + w.name() + "' [" + w.rows() + ", " + w.cols() + "] needs " + w.cols());
        }
        QuantKernels k = Kernels.get();
        int in = w.cols();
        float[] diff = new float[in];
        double total = 0;
        for (int o = 0; o < w.rows(); o++) {
            int wo = w.rowOffset(o);
            int qo = q.rowOffset(o);
            for (int i = 0; i < in; i++) {
                diff[i] = w.array()[wo + i] - q.array()[qo + i];
            }
            for (int t = 0; t < x.rows(); t++) {
                double e = k.dot(diff, 0, x.array(), x.rowOffset(t), in);
                total += e * e;
            }
        }
        return total;
    }

    private static void requireSameShape(FloatMatrix a, FloatMatrix b) {
        if (a.rows() != b.rows() || a.cols() != b.cols()) {
            throw new IllegalArgumentException("shapes differ: '" + a.name() + "' [" + a.rows() + ", " + a.cols()
                    + "] vs '" + b.name() + "' [" + b.rows() + ", " + b.cols() + "]");
        }
    }
}
