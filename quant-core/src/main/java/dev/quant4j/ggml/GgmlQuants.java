package dev.quant4j.ggml;

import dev.quant4j.kernel.GgmlBlockKernels;
import dev.quant4j.kernel.Kernels;
import java.util.stream.IntStream;

/**
 * Quantizes float32 rows to ggml's block types and back, byte for byte as ggml's reference code does
 * ({@code ggml_quantize_chunk} without an importance matrix, which calls {@code quantize_row_*_ref}; and the
 * {@code to_float} of ggml's type traits). The code, written after ggml's {@code src/ggml-quants.c}: the kernels of
 * {@link GgmlBlockKernels} (every dequantizer of a block type and the quantizers of q4_0, q4_1, q5_0, q5_1, q8_0,
 * q4_K and q5_K; the Vector API ones where {@link Kernels} chooses them, byte-identical to the scalar reference),
 * {@link KQuants} (the q6_K quantizer) and {@link GgmlFloats} (f32, f16, bf16).
 *
 * <p>A matrix {@code [rows, n_per_row]} is stored row after row; a row of {@code n_per_row} values takes {@link
 * GgmlType#rowSize} bytes. Rows are independent, so {@link #quantize} runs them in parallel with the same result.
 */
public final class GgmlQuants {

    /** The block kernels of this JVM: a constant, so each call below is statically bound once compiled. */
    private static final GgmlBlockKernels BLOCKS = Kernels.ggml();

    private GgmlQuants() {}

    /**
     * {@code ggml_quantize_chunk(type, src, dst, 0, nrows, n_per_row, NULL)}: the rows of {@code src} (row-major
     * {@code [nrows, n_per_row]}) in {@code type}.
     *
     * @throws IllegalArgumentException when quant4j does not quantize to {@code type}, {@code n_per_row} is not a
     *     multiple of its block size, {@code src} is too short, or a block type would get a NaN or infinite value
     */
    public static byte[] quantize(GgmlType type, float[] src, int nrows, int n_per_row) {
        checkShape(type, src.length, nrows, n_per_row);
        if (type.blockSize() > 1) {
            for (int i = 0; i < nrows * n_per_row; i++) {
                if (!Float.isFinite(src[i])) {
                    throw new IllegalArgumentException("value " + src[i] + " at row " + i / n_per_row + ", column "
                            + i % n_per_row + " cannot be quantized to " + type);
                }
            }
        }
        long rowSize = type.rowSize(n_per_row);
        long total = rowSize * nrows;
        if (total > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(
                    nrows + " rows of " + n_per_row + " values in " + type + " take " + total + " bytes, over 2 GB");
        }
        byte[] dst = new byte[(int) total];
        IntStream rows = IntStream.range(0, nrows);
        (nrows >= 16 ? rows.parallel() : rows)
                .forEach(r -> quantizeRow(type, src, r * n_per_row, dst, (int) (r * rowSize), n_per_row));
        return dst;
    }

    /** {@code to_float}: the values {@code [nrows, n_per_row]} that {@code data} in {@code type} stands for. */
    public static float[] dequantize(GgmlType type, byte[] data, int nrows, int n_per_row) {
        checkType(type);
        long rowSize = type.rowSize(n_per_row);
        if ((long) nrows * n_per_row > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(
                    nrows + " rows of " + n_per_row + " values are more than an array holds");
        }
        if (data.length < rowSize * nrows) {
            throw new IllegalArgumentException(nrows + " rows of " + n_per_row + " values in " + type + " need "
                    + rowSize * nrows + " bytes, got " + data.length);
        }
        float[] y = new float[nrows * n_per_row];
        for (int r = 0; r < nrows; r++) {
            dequantizeRow(type, data, (int) (r * rowSize), y, r * n_per_row, n_per_row);
        }
        return y;
    }

    /**
     * One row of {@code k} values from {@code x[xOff]} to {@code y[yOff]}, on the calling thread; unchecked ({@code k}
     * a multiple of the block size, the arrays long enough, the values finite).
     */
    public static void quantizeRow(GgmlType type, float[] x, int xOff, byte[] y, int yOff, int k) {
        switch (type) {
            case F32 -> GgmlFloats.quantizeRowF32(x, xOff, y, yOff, k);
            case F16 -> GgmlFloats.quantizeRowF16(x, xOff, y, yOff, k);
            case BF16 -> GgmlFloats.quantizeRowBf16(x, xOff, y, yOff, k);
            case Q4_0 -> BLOCKS.quantizeQ4_0(x, xOff, y, yOff, k);
            case Q4_1 -> BLOCKS.quantizeQ4_1(x, xOff, y, yOff, k);
            case Q5_0 -> BLOCKS.quantizeQ5_0(x, xOff, y, yOff, k);
            case Q5_1 -> BLOCKS.quantizeQ5_1(x, xOff, y, yOff, k);
            case Q8_0 -> BLOCKS.quantizeQ8_0(x, xOff, y, yOff, k);
            case Q4_K -> BLOCKS.quantizeQ4_K(x, xOff, y, yOff, k);
            case Q5_K -> BLOCKS.quantizeQ5_K(x, xOff, y, yOff, k);
            case Q6_K -> KQuants.quantize_row_q6_K_ref(x, xOff, y, yOff, k);
            default -> throw unsupported(type);
        }
    }

    /** One row of {@code k} values from {@code x[xOff]} to {@code y[yOff]}; unchecked. */
    public static void dequantizeRow(GgmlType type, byte[] x, int xOff, float[] y, int yOff, int k) {
        switch (type) {
            case F32 -> GgmlFloats.dequantizeRowF32(x, xOff, y, yOff, k);
            case F16 -> GgmlFloats.dequantizeRowF16(x, xOff, y, yOff, k);
            case BF16 -> GgmlFloats.dequantizeRowBf16(x, xOff, y, yOff, k);
            case Q4_0 -> BLOCKS.dequantizeQ4_0(x, xOff, y, yOff, k);
            case Q4_1 -> BLOCKS.dequantizeQ4_1(x, xOff, y, yOff, k);
            case Q5_0 -> BLOCKS.dequantizeQ5_0(x, xOff, y, yOff, k);
            case Q5_1 -> BLOCKS.dequantizeQ5_1(x, xOff, y, yOff, k);
            case Q8_0 -> BLOCKS.dequantizeQ8_0(x, xOff, y, yOff, k);
            case Q4_K -> BLOCKS.dequantizeQ4_K(x, xOff, y, yOff, k);
            case Q5_K -> BLOCKS.dequantizeQ5_K(x, xOff, y, yOff, k);
            case Q6_K -> BLOCKS.dequantizeQ6_K(x, xOff, y, yOff, k);
            default -> throw unsupported(type);
        }
    }

    private static void checkShape(GgmlType type, int length, int nrows, int n_per_row) {
        checkType(type);
        if (nrows < 0 || n_per_row <= 0) {
            throw new IllegalArgumentException("shape [" + nrows + ", " + n_per_row + "] is empty or negative");
        }
        if (n_per_row % type.blockSize() != 0) {
            throw new IllegalArgumentException("a row of " + n_per_row + " values is not a multiple of the " + type
                    + " block size " + type.blockSize());
        }
        if ((long) nrows * n_per_row > length) {
            throw new IllegalArgumentException("shape [" + nrows + ", " + n_per_row + "] needs "
                    + (long) nrows * n_per_row + " values, got " + length);
        }
    }

    private static void checkType(GgmlType type) {
        if (!type.quantizable()) {
            throw unsupported(type);
        }
    }

    private static IllegalArgumentException unsupported(GgmlType type) {
        return new IllegalArgumentException(
                "quant4j does not quantize to or from ggml type " + type + "; it does " + GgmlType.quantizableNames());
    }
}
