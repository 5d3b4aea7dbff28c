package dev.quant4j.quant;

import dev.quant4j.internal.TrustedConstruction;
import dev.quant4j.kernel.Kernels;
import dev.quant4j.kernel.LinearKernels;
import dev.quant4j.kernel.QuantKernels;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.PackOrder;
import dev.quant4j.tensor.FloatMatrix;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Objects;

/**
 * An immutable quantized matrix: the scheme, the shape, bit-packed codes, one scale and one zero-point per group,
 * and the pack order of the codes.
 *
 * <p>Layout ({@link PackOrder#LSB_FIRST_ROW_ALIGNED}): row {@code r} occupies bytes {@code [r * rowBytes, (r + 1) *
 * rowBytes)} of the packed array with {@code rowBytes = ceil(cols * bits / 8)}. Scales and zero-points are indexed
 * {@code r * groupsPerRow + c / groupSize} (a single entry per tensor for {@link LinearScheme#PER_TENSOR}). Zero-points
 * are unsigned bytes. The value a code stands for is {@code scale * (code - zero)} in float32.
 *
 * <p>Group order: by default column {@code c} belongs to group {@code c / groupSize}. A tensor may instead carry a
 * {@code g_idx} array, one group index per column, as GPTQ with act-order produces (AutoGPTQ's {@code g_idx}): column
 * {@code c} of row {@code r} then uses scale {@code r * groupsPerRow + gIdx[c]}.
 *
 * <p>Input scales (AWQ): a tensor may hold the codes of {@code W * s}, with {@code s} one positive scale per input
 * column to be folded into the previous operation. It then stands for the effective weight {@code x^ / s[c]}, which
 * is what {@link #dequantize()} returns; {@link #dequantizeFolded()} returns {@code x^} itself.
 */
public final class QuantizedTensor implements QuantizedWeight {

    static {
        TrustedConstruction.register(QuantizedParts.class, new Parts());
    }

    /** The only {@link QuantizedParts}: package access to both kinds of tensor. */
    private static final class Parts implements QuantizedParts {
        @Override
        public QuantizedTensor linear(
                String name,
                LinearScheme scheme,
                int rows,
                int cols,
                PackOrder packOrder,
                byte[] packed,
                float[] scales,
                byte[] zeros,
                int[] gIdx) {
            return new QuantizedTensor(name, scheme, rows, cols, packOrder, packed, scales, zeros, gIdx, null, true);
        }

        @Override
        public CodebookTensor codebook(
                String name, CodebookScheme scheme, int rows, int cols, byte[] packed, float[] absmax, DoubleQuant dq) {
            return CodebookTensor.owning(name, scheme, rows, cols, packed, absmax, dq);
        }

        @Override
        public byte[] packed(QuantizedTensor t) {
            return t.packed;
        }

        @Override
        public float[] scales(QuantizedTensor t) {
            return t.scales;
        }

        @Override
        public byte[] zeros(QuantizedTensor t) {
            return t.zeros;
        }

        @Override
        public byte[] packed(CodebookTensor t) {
            return t.packedShared();
        }

        @Override
        public float[] absmax(CodebookTensor t) {
            return t.absmaxShared();
        }
    }

    private final String name;
    private final LinearScheme scheme;
    private final int rows;
    private final int cols;
    private final PackOrder packOrder;
    private final int rowBytes;
    private final byte[] packed;
    private final float[] scales;
    private final byte[] zeros;
    /** Group of each column, or null for the natural order {@code c / groupSize}. */
    private final int[] gIdx;
    /** AWQ's per-input-column scales, or null. */
    private final float[] inputScales;

    /**
     * Builds a tensor from its parts, validating every length and value; the arrays are copied.
     *
     * @throws IllegalArgumentException naming the part that is inconsistent
     */
    public QuantizedTensor(
            String name,
            LinearScheme scheme,
            int rows,
            int cols,
            PackOrder packOrder,
            byte[] packed,
            float[] scales,
            byte[] zeros) {
        this(name, scheme, rows, cols, packOrder, packed.clone(), scales.clone(), zeros.clone(), null, null, true);
    }

    /**
     * Builds a tensor whose columns map to groups through {@code gIdx} (one entry per column, each in {@code [0,
     * groupsPerRow)}); only for a positive group size. A {@code gIdx} equal to the natural order is dropped.
     *
     * @throws IllegalArgumentException naming the part that is inconsistent
     */
    public QuantizedTensor(
            String name,
            LinearScheme scheme,
            int rows,
            int cols,
            PackOrder packOrder,
            byte[] packed,
            float[] scales,
            byte[] zeros,
            int[] gIdx) {
        this(
                name,
                scheme,
                rows,
                cols,
                packOrder,
                packed.clone(),
                scales.clone(),
                zeros.clone(),
                gIdx == null ? null : gIdx.clone(),
                null,
                true);
    }

    /** Takes ownership of the arrays (no copy); {@code validate} as the public constructor does. */
    private QuantizedTensor(
            String name,
            LinearScheme scheme,
            int rows,
            int cols,
            PackOrder packOrder,
            byte[] packed,
            float[] scales,
            byte[] zeros,
            int[] gIdx,
            float[] inputScales,
            boolean validate) {
        this.name = Objects.requireNonNull(name, "name");
        this.scheme = Objects.requireNonNull(scheme, "scheme");
        this.packOrder = Objects.requireNonNull(packOrder, "packOrder");
        if (rows <= 0 || cols <= 0) {
            throw new IllegalArgumentException(
                    "quantized tensor '" + name + "' has an empty shape [" + rows + ", " + cols + "]");
        }
        this.rows = rows;
        this.cols = cols;
        this.rowBytes = LinearKernels.packedBytes(cols, scheme.bits());
        int groups = scheme.scaleCount(rows, cols);
        long expectedPacked = (long) rowBytes * rows;
        if (packed.length != expectedPacked) {
            throw new IllegalArgumentException("quantized tensor '" + name + "': packed codes have " + packed.length
                    + " bytes, shape [" + rows + ", " + cols + "] at " + scheme.bits() + " bits needs "
                    + expectedPacked);
        }
        if (scales.length != groups || zeros.length != groups) {
            throw new IllegalArgumentException("quantized tensor '" + name + "': " + scales.length + " scales and "
                    + zeros.length + " zero-points, " + scheme + " on [" + rows + ", " + cols + "] needs " + groups);
        }
        if (validate) {
            for (int g = 0; g < groups; g++) {
                if (!(scales[g] > 0f) || !Float.isFinite(scales[g])) {
                    throw new IllegalArgumentException(
                            "quantized tensor '" + name + "': scale " + g + " is " + scales[g] + ", must be > 0");
                }
                if ((zeros[g] & 0xFF) > scheme.maxq()) {
                    throw new IllegalArgumentException("quantized tensor '" + name + "': zero-point " + g + " is "
                            + (zeros[g] & 0xFF) + ", above maxq " + scheme.maxq());
                }
            }
            if (scheme.bits() < 8) {
                int usedBits = cols * scheme.bits() % 8;
                if (usedBits != 0) {
                    int padMask = 0xFF << usedBits & 0xFF;
                    for (int r = 0; r < rows; r++) {
                        if ((packed[(r + 1) * rowBytes - 1] & padMask) != 0) {
                            throw new IllegalArgumentException(
                                    "quantized tensor '" + name + "': padding bits of row " + r + " are not zero");
                        }
                    }
                }
            }
        }
        this.packed = packed;
        this.scales = scales;
        this.zeros = zeros;
        this.gIdx = validGIdx(name, scheme, cols, gIdx);
        if (inputScales != null) {
            if (inputScales.length != cols) {
                throw new IllegalArgumentException(
                        "quantized tensor '" + name + "': " + inputScales.length + " input scales, expected " + cols);
            }
            for (int c = 0; c < cols; c++) {
                if (!(inputScales[c] > 0f) || !Float.isFinite(inputScales[c])) {
                    throw new IllegalArgumentException("quantized tensor '" + name + "': input scale " + c + " is "
                            + inputScales[c] + ", must be > 0 and finite");
                }
            }
        }
        this.inputScales = inputScales;
    }

    private static int[] validGIdx(String name, LinearScheme scheme, int cols, int[] gIdx) {
        if (gIdx == null) {
            return null;
        }
        if (scheme.groupSize() <= 0) {
            throw new IllegalArgumentException("quantized tensor '" + name + "': g_idx needs a positive group size, "
                    + scheme + " has " + scheme.granularity());
        }
        if (gIdx.length != cols) {
            throw new IllegalArgumentException(
                    "quantized tensor '" + name + "': g_idx has " + gIdx.length + " entries, expected " + cols);
        }
        int groups = scheme.groupsPerRow(cols);
        boolean natural = true;
        for (int c = 0; c < cols; c++) {
            if (gIdx[c] < 0 || gIdx[c] >= groups) {
                throw new IllegalArgumentException("quantized tensor '" + name + "': g_idx[" + c + "] is " + gIdx[c]
                        + ", outside [0, " + groups + ")");
            }
            natural &= gIdx[c] == c / scheme.groupSize();
        }
        return natural ? null : gIdx;
    }

    public String name() {
        return name;
    }

    public LinearScheme scheme() {
        return scheme;
    }

    public int rows() {
        return rows;
    }

    public int cols() {
        return cols;
    }

    public PackOrder packOrder() {
        return packOrder;
    }

    /** Bytes per packed row. */
    public int rowBytes() {
        return rowBytes;
    }

    /** The same tensor under another name (arrays shared, since both are immutable). */
    public QuantizedTensor named(String newName) {
        return new QuantizedTensor(
                newName, scheme, rows, cols, packOrder, packed, scales, zeros, gIdx, inputScales, false);
    }

    /**
     * This tensor's codes as the quantization of {@code W * s}, {@code s} one positive scale per input column (AWQ):
     * the result stands for {@code x^ / s[c]}. The scales are copied.
     *
     * @throws IllegalArgumentException if their number is not {@code cols} or one is not positive and finite
     */
    public QuantizedTensor withInputScales(float[] s) {
        return new QuantizedTensor(name, scheme, rows, cols, packOrder, packed, scales, zeros, gIdx, s.clone(), true);
    }

    /** Whether the tensor carries AWQ input scales. */
    public boolean hasInputScales() {
        return inputScales != null;
    }

    /** A copy of the AWQ input scales {@code s}, or null. */
    public float[] inputScales() {
        return inputScales == null ? null : inputScales.clone();
    }

    /** A read-only view of the packed codes. */
    public ByteBuffer packedCodes() {
        return ByteBuffer.wrap(packed).asReadOnlyBuffer();
    }

    /** A copy of the scales. */
    public float[] scales() {
        return scales.clone();
    }

    /** A copy of the zero-points (unsigned bytes). */
    public byte[] zeros() {
        return zeros.clone();
    }

    /** Whether columns map to groups through a {@code g_idx} other than the natural order. */
    public boolean hasGIdx() {
        return gIdx != null;
    }

    /** The group of each column: a copy of the {@code g_idx}, or the natural order {@code c / groupSize}. */
    public int[] gIdx() {
        if (gIdx != null) {
            return gIdx.clone();
        }
        int[] natural = new int[cols];
        int g = scheme.columnsPerGroup(cols);
        for (int c = 0; c < cols; c++) {
            natural[c] = scheme.groupSize() == LinearScheme.PER_TENSOR ? 0 : c / g;
        }
        return natural;
    }

    /** Index of the scale and zero-point that apply to element {@code (r, c)}. */
    public int groupIndex(int r, int c) {
        if (scheme.groupSize() == LinearScheme.PER_TENSOR) {
            return 0;
        }
        int g = gIdx != null ? gIdx[c] : c / scheme.columnsPerGroup(cols);
        return r * scheme.groupsPerRow(cols) + g;
    }

    /** The code of element {@code (r, c)}. */
    public int code(int r, int c) {
        Objects.checkIndex(r, rows);
        Objects.checkIndex(c, cols);
        long bit = (long) c * scheme.bits();
        int base = r * rowBytes + (int) (bit >>> 3);
        int shift = (int) (bit & 7);
        int word = packed[base] & 0xFF;
        if (base + 1 < (r + 1) * rowBytes) {
            word |= (packed[base + 1] & 0xFF) << 8;
        }
        return (word >>> shift) & scheme.maxq();
    }

    /** The codes of row {@code r}, one per byte (unsigned). */
    public byte[] rowCodes(int r) {
        Objects.checkIndex(r, rows);
        byte[] codes = new byte[cols];
        Kernels.get().unpack(packed, r * rowBytes, cols, scheme.bits(), codes, 0);
        return codes;
    }

    /** Scale of group {@code g} (see {@link #groupIndex}). */
    public float scale(int g) {
        return scales[g];
    }

    /** Zero-point of group {@code g} (see {@link #groupIndex}). */
    public int zero(int g) {
        return zeros[g] & 0xFF;
    }

    /** The value element {@code (r, c)} stands for (divided by its input scale, if any). */
    public float value(int r, int c) {
        int g = groupIndex(r, c);
        float v = scales[g] * (code(r, c) - zero(g));
        return inputScales == null ? v : v / inputScales[c];
    }

    /**
     * Dequantizes to a new float32 matrix with this tensor's name: the weight this tensor stands for, with AWQ input
     * scales divided back out.
     */
    public FloatMatrix dequantize() {
        FloatMatrix out = FloatMatrix.zeros(name, rows, cols);
        dequantizeInto(out.array(), 0);
        return out;
    }

    /**
     * The dequantized codes without dividing by the AWQ input scales: {@code Q(W * s)}, the weight to use once
     * {@code 1 / s} has been folded into the previous operation. Equal to {@link #dequantize()} without input scales.
     */
    public FloatMatrix dequantizeFolded() {
        FloatMatrix out = FloatMatrix.zeros(name, rows, cols);
        QuantKernels k = Kernels.get();
        byte[] codes = new byte[cols];
        for (int r = 0; r < rows; r++) {
            dequantizeCodes(k, r, codes, out.array(), r * cols);
        }
        return out;
    }

    /**
     * Dequantizes the whole tensor into {@code out[outOff, outOff + rows * cols)}, row-major, without allocating the
     * output.
     */
    public void dequantizeInto(float[] out, int outOff) {
        Objects.checkFromIndexSize(outOff, Math.multiplyExact(rows, cols), out.length);
        QuantKernels k = Kernels.get();
        if (gIdx == null
                && inputScales == null
                && scheme.groupSize() > 0
                && (long) cols * scheme.bits() == 8L * rowBytes
                && cols % scheme.groupSize() == 0) {
            // rows packed without padding: their groups are one run, decoded in one kernel call
            k.dequantizeGroups(
                    packed, 0, rows * cols, scheme.bits(), scheme.groupSize(), scales, 0, zeros, 0, out, outOff);
            return;
        }
        byte[] codes = new byte[cols];
        for (int r = 0; r < rows; r++) {
            dequantizeRow(k, r, codes, out, outOff + r * cols);
        }
    }

    /** Dequantizes row {@code r} into {@code out[outOff, outOff + cols)}. */
    public void dequantizeRow(int r, float[] out, int outOff) {
        Objects.checkIndex(r, rows);
        Objects.checkFromIndexSize(outOff, cols, out.length);
        // only the g_idx order unpacks codes into a buffer; the others decode in place
        dequantizeRow(Kernels.get(), r, gIdx != null ? new byte[cols] : null, out, outOff);
    }

    /**
     * Dequantizes row {@code r} into {@code out[outOff, outOff + cols)}, unpacking into {@code scratch} (at least
     * {@code cols} bytes), so that a loop over rows allocates nothing.
     */
    public void dequantizeRow(int r, float[] out, int outOff, byte[] scratch) {
        Objects.checkIndex(r, rows);
        Objects.checkFromIndexSize(outOff, cols, out.length);
        Objects.checkFromIndexSize(0, cols, scratch.length);
        dequantizeRow(Kernels.get(), r, scratch, out, outOff);
    }

    private void dequantizeRow(QuantKernels k, int r, byte[] codes, float[] out, int outOff) {
        dequantizeCodes(k, r, codes, out, outOff);
        if (inputScales != null) {
            for (int c = 0; c < cols; c++) {
                out[outOff + c] /= inputScales[c];
            }
        }
    }

    private void dequantizeCodes(QuantKernels k, int r, byte[] codes, float[] out, int outOff) {
        if (gIdx != null) {
            k.unpack(packed, r * rowBytes, cols, scheme.bits(), codes, 0);
            int base = r * scheme.groupsPerRow(cols);
            for (int c = 0; c < cols; c++) {
                int gi = base + gIdx[c];
                out[outOff + c] = scales[gi] * ((codes[c] & 0xFF) - (zeros[gi] & 0xFF));
            }
            return;
        }
        int gsize = scheme.columnsPerGroup(cols);
        int first = scheme.groupSize() == LinearScheme.PER_TENSOR ? 0 : r * (cols / gsize);
        k.dequantizeGroups(packed, r * rowBytes, cols, scheme.bits(), gsize, scales, first, zeros, first, out, outOff);
    }

    /** Bytes this tensor stores: packed codes, float32 scales, byte zero-points and an int32 g_idx if it has one. */
    public long storageBytes() {
        return (long) packed.length
                + 4L * scales.length
                + zeros.length
                + (gIdx == null ? 0 : 4L * cols)
                + (inputScales == null ? 0 : 4L * cols);
    }

    /** Stored bits per weight, counting scales (32 bits), zero-points (8 bits) and any g_idx (32 bits a column). */
    public double bitsPerWeight() {
        return storageBytes() * 8.0 / ((double) rows * cols);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof QuantizedTensor q
                && name.equals(q.name)
                && scheme.equals(q.scheme)
                && rows == q.rows
                && cols == q.cols
                && packOrder == q.packOrder
                && Arrays.equals(packed, q.packed)
                && Arrays.equals(scales, q.scales)
                && Arrays.equals(zeros, q.zeros)
                && Arrays.equals(gIdx, q.gIdx)
                && Arrays.equals(inputScales, q.inputScales);
    }

    @Override
    public int hashCode() {
        return Objects.hash(name, scheme, rows, cols, Arrays.hashCode(packed), Arrays.hashCode(scales));
    }

    @Override
    public String toString() {
        return "QuantizedTensor[" + name + ", " + rows + "x" + cols + ", " + scheme + "]";
    }
}
