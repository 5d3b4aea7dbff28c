package dev.quant4j.codebook;

import dev.quant4j.internal.TrustedConstruction;
import dev.quant4j.kernel.Kernels;
import dev.quant4j.kernel.QuantKernels;
import dev.quant4j.quant.CodebookTensor;
import dev.quant4j.quant.DoubleQuant;
import dev.quant4j.quant.QuantizedParts;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.quant.Quantizer;
import dev.quant4j.scheme.Codebook;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.tensor.FloatMatrix;
import java.util.Objects;

/**
 * bitsandbytes' {@code quantize_4bit} (blockwise absmax onto NF4 or FP4). The codes come from the {@code
 * encodeCodebook} kernel (threshold counting, vectorized), which the tests hold equal to {@link Codebook#encode}, the
 * reference's decision trees.
 *
 * <p>The matrix is flattened in row-major order and cut into blocks; for each block, as the CUDA kernel {@code
 * kQuantizeBlockwise} does: {@code absmax = max |v|}, {@code inv = 1 / absmax} in float32, and each value gets
 * {@code codebook.encode(v * inv)}.
 *
 * <p>An all-zero block ({@code absmax = 0}) gets the codebook's code for exactly 0 in every position (NF4: 7, FP4:
 * 0), so it dequantizes to exactly 0 with or without double quantization. bitsandbytes' kernel computes {@code 0 *
 * (1 / 0) = NaN} there and stores code 0 (NF4's -1.0): harmless with an exact absmax of 0, but with double
 * quantization the restored absmax is {@code map[code] * absmax2 + offset}, not 0, and the block would come back as
 * non-zero values. This is the one place where quant4j's codes differ from bitsandbytes'.
 */
public final class BlockwiseQuantizer implements Quantizer<CodebookTensor> {

    private final CodebookScheme scheme;

    public BlockwiseQuantizer(CodebookScheme scheme) {
        this.scheme = Objects.requireNonNull(scheme, "scheme");
    }

    public CodebookScheme scheme() {
        return scheme;
    }

    /**
     * The block size, when blocks do not cross rows ({@code cols} a multiple of it) and are stored as they are; 0 with
     * double quantization, which compresses the absmax values of the whole weight together.
     */
    @Override
    public int independentColumns(int cols) {
        int bs = scheme.blockSize();
        return !scheme.doubleQuant() && cols % bs == 0 ? bs : 0;
    }

    /**
     * Quantizes {@code w}.
     *
     * @throws IllegalArgumentException if {@code w} holds NaN or an infinity (naming the index)
     */
    @Override
    public CodebookTensor quantize(FloatMatrix w) {
        Objects.requireNonNull(w, "w");
        Codebook book = scheme.codebook();
        QuantKernels k = Kernels.get();
        float[] thresholds = book.thresholds();
        boolean signMagnitude = book == Codebook.FP4;
        long n = w.size();
        int bs = scheme.blockSize();
        float[] absmax = new float[Math.toIntExact(scheme.blocks(n))];
        byte[] packed = new byte[Math.toIntExact((n + 1) / 2)];
        float[] x = w.rowOffset(0) == 0 && w.array().length == n ? w.array() : w.toArray();
        // whole blocks: the fused kernel, about 64K values per call (its code buffer)
        int whole = (int) (n / bs);
        int perCall = Math.max(1, (1 << 16) / bs);
        for (int b = 0; b < whole; b += perCall) {
            int count = Math.min(perCall, whole - b);
            // checked chunk by chunk, so that the kernel finds the chunk in cache
            requireFinite(k, w, x, b * bs, count * bs);
            k.quantizeBlocks4(
                    x, b * bs, count, bs, thresholds, signMagnitude, absmax, b, packed, (int) ((long) b * bs / 2));
        }
        if (whole < absmax.length) {
            // the partial last block, which may be odd
            int start = whole * bs;
            int len = (int) (n - start);
            requireFinite(k, w, x, start, len);
            byte[] codes = new byte[len + 1];
            float m = k.absMax(x, start, len);
            absmax[whole] = m;
            float inv = 1.0f / m;
            k.encodeCodebook(x, start, len, inv, thresholds, signMagnitude, codes, 0);
            if ((len & 1) == 1) {
                // bitsandbytes' kernel loads 0 past the end of the tensor, so the pad nibble is the code of 0 * inv
                codes[len] = (byte) book.encode(0f * inv);
            }
            // first element of each pair in the high nibble (blocks start at even indices: bs is even)
            k.packHighFirst4(codes, 0, len + (len & 1), packed, start >>> 1);
        }
        zeroBlocksToZeroCode(book, absmax, bs, n, packed);
        if (scheme.doubleQuant()) {
            // the codes above use the exact absmax; only its stored form is compressed, as in bitsandbytes
            return TrustedConstruction.get(QuantizedParts.class, QuantizedTensor.class)
                    .codebook(w.name(), scheme, w.rows(), w.cols(), packed, null, DoubleQuant.of(absmax));
        }
        return TrustedConstruction.get(QuantizedParts.class, QuantizedTensor.class)
                .codebook(w.name(), scheme, w.rows(), w.cols(), packed, absmax, null);
    }

    /** Writes the code of 0 over every nibble of each block whose absmax is 0 (see the class comment). */
    private static void zeroBlocksToZeroCode(Codebook book, float[] absmax, int bs, long n, byte[] packed) {
        byte pair = (byte) (book.encode(0f) * 0x11);
        for (int b = 0; b < absmax.length; b++) {
            if (absmax[b] == 0f) {
                // blocks start at even indices (bs is even); a last block of odd length also owns the pad nibble
                long from = (long) b * bs / 2;
                long to = (Math.min(n, (long) (b + 1) * bs) + 1) / 2;
                java.util.Arrays.fill(packed, (int) from, (int) to, pair);
            }
        }
    }

    /** Throws for NaN or an infinity in {@code x[off, off + len)}, naming the first one in {@code w}. */
    private static void requireFinite(QuantKernels k, FloatMatrix w, float[] x, int off, int len) {
        if (!k.allFinite(x, off, len)) {
            w.requireFinite(); // throws, naming the first bad index
        }
    }
}
