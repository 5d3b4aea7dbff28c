package dev.quant4j.ggml;

import dev.quant4j.gptq.HessianAccumulator;
import dev.quant4j.kernel.GgmlBlockKernels;
import dev.quant4j.kernel.Kernels;
import dev.quant4j.linalg.Cholesky;
import dev.quant4j.tensor.FloatMatrix;
import java.util.Objects;
import java.util.concurrent.ForkJoinPool;
import java.util.stream.IntStream;

/**
 * GPTQ (Frantar et al. 2022, Algorithm 1, as IST-DASLab/gptq's {@code gptq.py} {@code fasterquant} runs it: lazy
 * batches of 128 columns, group parameters from {@code W[:, i:i+groupsize]} at each group's first column) with ggml's
 * 32-value blocks as the groups, writing ggml's {@code q4_0} ({@code --bits 4 --sym}), {@code q4_1} ({@code --bits 4
 * --asym}) or {@code q8_0} ({@code --bits 8 --sym}).
 *
 * <p>Each block's parameters are ggml's ({@code d = max / -8}, {@code d = (max - min) / 15, m = min}, {@code d = amax /
 * 127}; the quantizers of {@link GgmlBlockKernels}) rounded to FP16 <em>before</em> the block is quantized, so the codes are chosen for, and
 * the error feedback uses, exactly the values the file stores: {@code D = fp16(d)}, codes {@code clamp(floor(x / D +
 * 8.5), 0, 15)}, {@code clamp(floor((x - M) / D + 0.5), 0, 15)} or {@code clamp(roundf(x / D), -128, 127)}. The result
 * dequantizes, by ggml's own {@code dequantize_row_*}, to the matrix GPTQ's error feedback assumed ({@link
 * Result#dequantized()}). Rows are independent in GPTQ and run in parallel; the result does not depend on the number of
 * threads.
 *
 * <p>Act-order ({@link Order#ACT_ORDER}) takes the form AutoGPTQ calls {@code static_groups} (AutoGPTQ/AutoGPTQ {@code
 * auto_gptq/quantization/gptq.py} at commit 0759aeae, {@code fasterquant}), the only one a ggml block, 32 consecutive
 * <em>original</em> columns with one scale, can hold:
 *
 * <pre>
 * dead = diag(H) == 0:  H[dead, dead] = 1;  W[:, dead] = 0
 * static groups: every block's D (and M) from W now, rounded to FP16, in the original column order
 * act-order: perm = argsort(diag(H), descending, stable); W = W[:, perm]; H = H[perm][:, perm]
 * Hinv = cholesky(cholesky_inverse(cholesky(H + damp I)), upper=True)
 * for each column i of the permuted order: quantize it with the parameters of block perm[i] / 32, feed the error back
 * the codes and Q go to column perm[i] (Q[:, invperm])
 * </pre>
 *
 * Ties in {@code diag(H)} keep ascending column order, as {@link dev.quant4j.gptq.Gptq} sorts them ({@code
 * torch.argsort} leaves tie order unspecified); the damping is the same fraction of the same mean diagonal in every
 * order. With {@link Order#STATIC_GROUPS} the columns keep their order and only the parameters are fixed up front.
 */
public final class GgmlGptq {

    /** gptq.py's lazy batch. */
    static final int BLOCKSIZE = 128;

    static final int DAMPING_TRIES = 3;

    /**
     * What GPTQ wrote.
     *
     * @param data the tensor in its ggml type, {@code rows} rows of {@code cols / 32} blocks
     * @param dequantized the values the blocks stand for, row-major
     * @param loss {@code sum (w - q)^2 / Hinv[i,i]^2 / 2}, gptq.py's {@code Losses}
     * @param deadColumns input features never activated ({@code diag(H) == 0}), whose weights were set to 0
     * @param damping the fraction of the mean diagonal added to it
     */
    public record Result(byte[] data, float[] dequantized, double loss, int deadColumns, double damping) {}

    /** The order in which columns are quantized, and where each block's parameters come from. */
    public enum Order {
        /**
         * Columns in order, a block's parameters from the weights at its first column, with the updates of the lazy
         * batches before it (gptq.py's groups).
         */
        COLUMNS,
        /**
         * Columns in order, every block's parameters from the (dead-zeroed) weights before any error feedback
         * (AutoGPTQ's {@code static_groups}).
         */
        STATIC_GROUPS,
        /** Columns by descending {@code diag(H)}, each with the static parameters of its own (original) block. */
        ACT_ORDER
    }

    private GgmlGptq() {}

    /**
     * GPTQ of {@code w} {@code [rows, cols]} into {@code type} with the Hessian of {@code hessian}, columns in order
     * ({@link Order#COLUMNS}).
     *
     * @param percdamp damping as a fraction of the mean Hessian diagonal (gptq.py's default 0.01); raised tenfold up
     *     to twice when {@code H} is not positive definite
     * @throws IllegalArgumentException for another type, columns not a multiple of 32 or not the Hessian's, non-finite
     *     weights, or a Hessian that stays not positive definite
     */
    public static Result quantize(
            GgmlType type, FloatMatrix w, HessianAccumulator hessian, double percdamp, ForkJoinPool pool) {
        return quantize(type, w, hessian, percdamp, Order.COLUMNS, pool);
    }

    /**
     * GPTQ of {@code w} {@code [rows, cols]} into {@code type} with the Hessian of {@code hessian}, its columns in
     * {@code order}.
     *
     * @param percdamp damping as a fraction of the mean Hessian diagonal (gptq.py's default 0.01); raised tenfold up
     *     to twice when {@code H} is not positive definite
     * @throws IllegalArgumentException for another type, columns not a multiple of 32 or not the Hessian's, non-finite
     *     weights, or a Hessian that stays not positive definite
     */
    public static Result quantize(
            GgmlType type, FloatMatrix w, HessianAccumulator hessian, double percdamp, Order order, ForkJoinPool pool) {
        Objects.requireNonNull(order, "order");
        if (type != GgmlType.Q4_0 && type != GgmlType.Q4_1 && type != GgmlType.Q8_0) {
            throw new IllegalArgumentException("GPTQ writes ggml's q4_0, q4_1 or q8_0, not " + type);
        }
        final int rows = w.rows();
        final int columns = w.cols();
        if (columns % 32 != 0) {
            throw new IllegalArgumentException("tensor '" + w.name() + "' [" + rows + ", " + columns + "]: its rows of "
                    + columns + " input features are not a multiple of the " + type + " block size 32");
        }
        if (hessian.columns() != columns) {
            throw new IllegalArgumentException("tensor '" + w.name() + "' has " + columns + " input features, the"
                    + " Hessian '" + hessian.name() + "' " + hessian.columns());
        }
        w.requireFinite();
        float[] H = hessian.hessian();
        float[] W = w.toArray();
        int dead = 0;
        double meanDiag = 0;
        for (int i = 0; i < columns; i++) {
            if (H[i * columns + i] == 0f) {
                H[i * columns + i] = 1f;
                dead++;
                for (int r = 0; r < rows; r++) {
                    W[r * columns + i] = 0f;
                }
            }
            meanDiag += H[i * columns + i];
        }
        if (dead == columns) {
            throw new IllegalArgumentException("GPTQ layer '" + w.name() + "': all " + columns
                    + " input features are zero in every calibration token (diag(H) == 0)");
        }
        meanDiag /= columns;
        final int[] perm = order == Order.ACT_ORDER ? actOrder(H, columns) : identity(columns);
        if (order == Order.ACT_ORDER) {
            H = permuted(H, columns, perm);
        }
        float[] hinv = null;
        double damping = percdamp;
        for (int attempt = 0; attempt < DAMPING_TRIES && hinv == null; attempt++) {
            damping = percdamp * Math.pow(10, attempt);
            float damp = (float) (damping * meanDiag);
            float[] damped = H.clone();
            for (int i = 0; i < columns; i++) {
                damped[i * columns + i] += damp;
            }
            hinv = Cholesky.upperFactorOfInverse(damped, columns, Kernels.get(), pool);
        }
        if (hinv == null) {
            throw new IllegalArgumentException("GPTQ layer '" + w.name() + "': H is not positive definite even with "
                    + damping + " x its mean diagonal added");
        }
        final float[] Hinv = hinv;
        final int rowSize = (int) type.rowSize(columns);
        byte[] data = new byte[rows * rowSize];
        float[] q = new float[rows * columns];
        double[] rowLoss = new double[rows];
        final boolean staticGroups = order != Order.COLUMNS;
        pool.submit(() -> IntStream.range(0, rows)
                        .parallel()
                        .forEach(r -> rowLoss[r] =
                                row(type, W, r * columns, columns, perm, staticGroups, Hinv, data, r * rowSize, q)))
                .join();
        double loss = 0;
        for (double v : rowLoss) {
            loss += v;
        }
        return new Result(data, q, loss / 2, dead, damping);
    }

    /**
     * One row, its columns in the order {@code perm} ({@code Hinv} is of the permuted {@code H}): {@code w} is the row
     * in that order after the lazy batches' updates, {@code w1} the current batch being quantized. With {@code
     * staticGroups} every block's parameters come from the row as it is in {@code W} (dead-zeroed, before any
     * feedback); otherwise ({@code perm} the identity) from {@code w} at the block's first column.
     */
    private static double row(
            GgmlType type,
            float[] W,
            int off,
            int columns,
            int[] perm,
            boolean staticGroups,
            float[] Hinv,
            byte[] data,
            int dOff,
            float[] q) {
        final int typeSize = type.typeSize();
        float[] w = new float[columns];
        for (int c = 0; c < columns; c++) {
            w[c] = W[off + perm[c]];
        }
        float[] w1 = new float[BLOCKSIZE];
        float[] err1 = new float[BLOCKSIZE];
        int[] code = new int[columns]; // by original column
        float[] params = new float[staticGroups ? 2 * (columns / 32) : 2];
        if (staticGroups) {
            for (int b = 0; b < columns / 32; b++) {
                blockParams(type, W, off + b * 32, params, 2 * b, data, dOff + b * typeSize);
            }
        }
        double loss = 0;
        for (int i1 = 0; i1 < columns; i1 += BLOCKSIZE) {
            int i2 = Math.min(i1 + BLOCKSIZE, columns);
            int count = i2 - i1;
            System.arraycopy(w, i1, w1, 0, count);
            for (int i = 0; i < count; i++) {
                int c = i1 + i;
                int oc = perm[c];
                if (!staticGroups && c % 32 == 0) {
                    // find_params(W[:, c:c+32]): W holds the earlier batches' updates only, as in gptq.py
                    blockParams(type, w, c, params, 0, data, dOff + c / 32 * typeSize);
                }
                float x = w1[i];
                float qv = quantizeOne(type, x, params, staticGroups ? 2 * (oc / 32) : 0, code, oc);
                q[off + oc] = qv;
                float d = Hinv[c * columns + c];
                loss += (double) (x - qv) * (x - qv) / ((double) d * d);
                float err = (x - qv) / d;
                for (int j = i; j < count; j++) {
                    w1[j] -= err * Hinv[c * columns + i1 + j];
                }
                err1[i] = err;
            }
            for (int k = 0; k < count; k++) {
                float e = err1[k];
                int h = (i1 + k) * columns;
                for (int j = i2; j < columns; j++) {
                    w[j] -= e * Hinv[h + j];
                }
            }
        }
        for (int b = 0; b < columns / 32; b++) {
            packCodes(type, code, b * 32, data, dOff + b * typeSize);
        }
        return loss;
    }

    /**
     * act-order's {@code perm}: column indices by descending {@code diag(H)} of {@code H [columns, columns]}, ties in
     * ascending index order (a stable sort, as {@link dev.quant4j.gptq.Gptq}).
     */
    static int[] actOrder(float[] H, int columns) {
        float[] diag = new float[columns];
        for (int i = 0; i < columns; i++) {
            diag[i] = H[i * columns + i];
        }
        return IntStream.range(0, columns)
                .boxed()
                .sorted((a, b) -> Float.compare(diag[b], diag[a]))
                .mapToInt(Integer::intValue)
                .toArray();
    }

    private static int[] identity(int columns) {
        return IntStream.range(0, columns).toArray();
    }

    /** {@code H[perm][:, perm]}. */
    private static float[] permuted(float[] H, int columns, int[] perm) {
        float[] hp = new float[H.length];
        for (int i = 0; i < columns; i++) {
            int src = perm[i] * columns;
            for (int j = 0; j < columns; j++) {
                hp[i * columns + j] = H[src + perm[j]];
            }
        }
        return hp;
    }

    /**
     * ggml's block parameters of {@code x[c, c+32)}, rounded to FP16, stored in the block head at {@code y[b]} and in
     * {@code params[p]} ({@code d}) and {@code params[p + 1]} ({@code m}, q4_1).
     */
    private static void blockParams(GgmlType type, float[] x, int c, float[] params, int p, byte[] y, int b) {
        switch (type) {
            case Q4_0 -> {
                float amax = 0.0f;
                float max = 0.0f;
                for (int j = 0; j < 32; j++) {
                    final float v = x[c + j];
                    if (amax < Math.abs(v)) {
                        amax = Math.abs(v);
                        max = v;
                    }
                }
                GgmlFloats.putFp16(y, b, max / -8);
                params[p] = GgmlFloats.getFp16(y, b);
            }
            case Q4_1 -> {
                float min = Float.MAX_VALUE;
                float max = -Float.MAX_VALUE;
                for (int j = 0; j < 32; j++) {
                    final float v = x[c + j];
                    if (v < min) min = v;
                    if (v > max) max = v;
                }
                GgmlFloats.putFp16(y, b, (max - min) / ((1 << 4) - 1));
                GgmlFloats.putFp16(y, b + 2, min);
                params[p] = GgmlFloats.getFp16(y, b);
                params[p + 1] = GgmlFloats.getFp16(y, b + 2);
            }
            default -> {
                float amax = 0.0f;
                for (int j = 0; j < 32; j++) {
                    amax = Math.max(amax, Math.abs(x[c + j]));
                }
                GgmlFloats.putFp16(y, b, amax / ((1 << 7) - 1));
                params[p] = GgmlFloats.getFp16(y, b);
            }
        }
    }

    /**
     * The code of {@code x} with the stored parameters {@code params[p]} (and {@code params[p + 1]}), kept in {@code
     * code[j]}; returns the value it stands for.
     */
    private static float quantizeOne(GgmlType type, float x, float[] params, int p, int[] code, int j) {
        final float d = params[p];
        final float id = d != 0 ? 1.0f / d : 0.0f;
        return switch (type) {
            case Q4_0 -> {
                int q = Math.max(0, Math.min(15, (int) Math.floor(x * id + 8.5f)));
                code[j] = q;
                yield (q - 8) * d;
            }
            case Q4_1 -> {
                final float m = params[p + 1];
                int q = Math.max(0, Math.min(15, (int) Math.floor((x - m) * id + 0.5f)));
                code[j] = q;
                yield q * d + m;
            }
            default -> {
                int q = Math.max(-128, Math.min(127, (int) roundf(x * id)));
                code[j] = q;
                yield q * d;
            }
        };
    }

    /** The 32 codes {@code code[c, c+32)} of a block into its {@code qs} bytes, ggml's layout. */
    private static void packCodes(GgmlType type, int[] code, int c, byte[] y, int b) {
        switch (type) {
            case Q4_0, Q4_1 -> {
                int qs = b + (type == GgmlType.Q4_0 ? 2 : 4);
                for (int j = 0; j < 16; j++) {
                    y[qs + j] = (byte) (code[c + j] | code[c + j + 16] << 4);
                }
            }
            default -> {
                for (int j = 0; j < 32; j++) {
                    y[b + 2 + j] = (byte) code[c + j];
                }
            }
        }
    }

    /** C's {@code roundf}: to nearest, halves away from zero. */
    static float roundf(float x) {
        return (float) Math.copySign(Math.floor(Math.abs((double) x) + 0.5), x);
    }
}
