package dev.quant4j.quant;

import dev.quant4j.kernel.Kernels;
import dev.quant4j.kernel.QuantKernels;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.PackOrder;
import dev.quant4j.tensor.FloatMatrix;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Objects;

/**
 * An immutable 4-bit codebook-quantized matrix: packed codes in bitsandbytes' order ({@link
 * PackOrder#HIGH_NIBBLE_FIRST_FLAT}) and one float32 absmax per block of the flattened tensor. Element {@code i} (in
 * row-major order) stands for {@code codebook.value(code(i)) * absmax[i / blockSize]}, in float32, as bitsandbytes'
 * {@code dequantize_4bit}.
 */
public final class CodebookTensor implements QuantizedWeight {

    private final String name;
    private final CodebookScheme scheme;
    private final int rows;
    private final int cols;
    private final byte[] packed;
    /** The absmax of every block: as quantized, or restored from {@link #doubleQuant}. */
    private final float[] absmax;
    /** The codebook's 16 values (a copy of its table, read by the decoders). */
    private final float[] table;
    /** The stored form of the absmax values under double quantization, else null. */
    private final DoubleQuant doubleQuant;

    /**
     * Builds a tensor from its parts, validating every length and value; the arrays are copied.
     *
     * @throws IllegalArgumentException naming the part that is inconsistent
     */
    public CodebookTensor(String name, CodebookScheme scheme, int rows, int cols, byte[] packed, float[] absmax) {
        this(name, scheme, rows, cols, packed, absmax, null, true);
    }

    /**
     * For the library's quantizer ({@link QuantizedParts}), which hands over arrays it made and keeps no reference to:
     * validated like the public constructors, not copied.
     */
    static CodebookTensor owning(
            String name, CodebookScheme scheme, int rows, int cols, byte[] packed, float[] absmax, DoubleQuant dq) {
        return new CodebookTensor(name, scheme, rows, cols, packed, dq == null ? absmax : dq.restore(), dq, false);
    }

    /**
     * A tensor whose block absmax values are stored double-quantized ({@code scheme.doubleQuant()} must be true); they
     * are restored from {@code doubleQuant}.
     */
    public CodebookTensor(
            String name, CodebookScheme scheme, int rows, int cols, byte[] packed, DoubleQuant doubleQuant) {
        this(
                name,
                scheme,
                rows,
                cols,
                packed,
                Objects.requireNonNull(doubleQuant, "doubleQuant").restore(),
                doubleQuant,
                true);
    }

    private CodebookTensor(
            String name,
            CodebookScheme scheme,
            int rows,
            int cols,
            byte[] packed,
            float[] absmax,
            DoubleQuant doubleQuant,
            boolean copy) {
        this.name = Objects.requireNonNull(name, "name");
        this.scheme = Objects.requireNonNull(scheme, "scheme");
        if (rows <= 0 || cols <= 0) {
            throw new IllegalArgumentException(
                    "quantized tensor '" + name + "' has an empty shape [" + rows + ", " + cols + "]");
        }
        long n = (long) rows * cols;
        if (packed.length != (n + 1) / 2) {
            throw new IllegalArgumentException("quantized tensor '" + name + "': packed codes have " + packed.length
                    + " bytes, " + n + " values need " + (n + 1) / 2);
        }
        if (absmax.length != scheme.blocks(n)) {
            throw new IllegalArgumentException("quantized tensor '" + name + "': " + absmax.length
                    + " absmax values, " + n + " values in blocks of " + scheme.blockSize() + " need "
                    + scheme.blocks(n));
        }
        if (scheme.doubleQuant() != (doubleQuant != null)) {
            throw new IllegalArgumentException("quantized tensor '" + name + "': scheme " + scheme
                    + (doubleQuant == null ? " needs" : " does not take") + " double-quantized absmax values");
        }
        for (int b = 0; b < absmax.length; b++) {
            // restored absmax values may come out slightly negative near 0, as in bitsandbytes; plain ones may not
            if (!Float.isFinite(absmax[b]) || (doubleQuant == null && absmax[b] < 0f)) {
                throw new IllegalArgumentException(
                        "quantized tensor '" + name + "': absmax " + b + " is " + absmax[b] + ", must be >= 0");
            }
        }
        this.doubleQuant = doubleQuant;
        this.table = scheme.codebook().table();
        this.rows = rows;
        this.cols = cols;
        this.packed = copy ? packed.clone() : packed;
        this.absmax = copy ? absmax.clone() : absmax;
    }

    public String name() {
        return name;
    }

    public CodebookScheme scheme() {
        return scheme;
    }

    public int rows() {
        return rows;
    }

    public int cols() {
        return cols;
    }

    public PackOrder packOrder() {
        return PackOrder.HIGH_NIBBLE_FIRST_FLAT;
    }

    byte[] packedShared() {
        return packed;
    }

    float[] absmaxShared() {
        return absmax;
    }

    /** A read-only view of the packed codes. */
    public ByteBuffer packedCodes() {
        return ByteBuffer.wrap(packed).asReadOnlyBuffer();
    }

    /** The double-quantized absmax values, if the scheme uses double quantization. */
    public java.util.Optional<DoubleQuant> doubleQuant() {
        return java.util.Optional.ofNullable(doubleQuant);
    }

    /** A copy of the absmax of every block (restored from the double quantization where there is one). */
    public float[] absmax() {
        return absmax.clone();
    }

    /** The code of element {@code i} of the flattened tensor. */
    public int code(long i) {
        Objects.checkIndex(i, (long) rows * cols);
        int b = packed[(int) (i >>> 1)] & 0xFF;
        return (i & 1) == 0 ? b >>> 4 : b & 0xF;
    }

    /** Dequantizes to a new float32 matrix with this tensor's name. */
    public FloatMatrix dequantize() {
        FloatMatrix out = FloatMatrix.zeros(name, rows, cols);
        dequantizeInto(out.array(), 0);
        return out;
    }

    /**
     * Dequantizes into {@code out[outOff, outOff + rows * cols)} (row-major) without allocating: per block, the 16
     * values {@code table[c] * absmax} are computed once and looked up, which gives the same float32 products.
     */
    public void dequantizeInto(float[] out, int outOff) {
        int n = Math.multiplyExact(rows, cols);
        Objects.checkFromIndexSize(outOff, n, out.length);
        dequantizeRange(0, n, out, outOff); // whole blocks in one kernel call, then the partial last block
    }

    /**
     * Dequantizes elements {@code [start, start + len)} of the flattened tensor (for instance one row) into {@code
     * out[outOff ...]}, with the same float32 products as {@link #dequantizeInto}.
     */
    public void dequantizeRange(long start, int len, float[] out, int outOff) {
        long n = (long) rows * cols;
        Objects.checkFromIndexSize(start, len, n);
        Objects.checkFromIndexSize(outOff, len, out.length);
        float[] table = this.table;
        int bs = scheme.blockSize();
        QuantKernels k = Kernels.get();
        float[] scaled = null; // only for a range that starts or ends inside a block (a row-by-row product needs none)
        long i = start;
        long end = start + len;
        while (i < end) {
            int b = (int) (i / bs);
            long blockEnd = Math.min(end, (long) (b + 1) * bs);
            if (i == (long) b * bs && blockEnd - i == bs) {
                // whole blocks from here: one call for all of them
                int count = (int) ((end - i) / bs);
                k.decodeBlocks4(packed, (int) (i >>> 1), count, bs, table, absmax, b, out, outOff + (int) (i - start));
                i += (long) count * bs;
                continue;
            }
            if (scaled == null) {
                scaled = new float[16];
            }
            for (int c = 0; c < 16; c++) {
                scaled[c] = table[c] * absmax[b];
            }
            if ((i & 1) == 1) { // a high-nibble-first byte split by the range: its second code alone
                out[outOff + (int) (i - start)] = scaled[packed[(int) (i >>> 1)] & 0xF];
                i++;
            }
            if (i < blockEnd) {
                k.decode4(packed, (int) (i >>> 1), (int) (blockEnd - i), scaled, out, outOff + (int) (i - start));
                i = blockEnd;
            }
        }
    }

    /** Bytes stored: packed codes, and the float32 absmax values or their double quantization. */
    public long storageBytes() {
        return packed.length + (doubleQuant == null ? 4L * absmax.length : doubleQuant.storageBytes());
    }

    /**
     * Stored bits per weight: 4 + 32 / blockSize (4.5 at block 64), or with double quantization 4 + (8 + 32 / 256) /
     * blockSize (about 4.127 at block 64).
     */
    public double bitsPerWeight() {
        return storageBytes() * 8.0 / ((double) rows * cols);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof CodebookTensor t
                && name.equals(t.name)
                && scheme.equals(t.scheme)
                && rows == t.rows
                && cols == t.cols
                && Arrays.equals(packed, t.packed)
                && Arrays.equals(absmax, t.absmax)
                && Objects.equals(doubleQuant, t.doubleQuant);
    }

    @Override
    public int hashCode() {
        return Objects.hash(name, scheme, rows, cols, Arrays.hashCode(packed));
    }

    @Override
    public String toString() {
        return "CodebookTensor[" + name + ", " + rows + "x" + cols + ", " + scheme + "]";
    }
}
