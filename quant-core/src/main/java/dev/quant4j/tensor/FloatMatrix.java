package dev.quant4j.tensor;

import dev.quant4j.kernel.Kernels;
import dev.quant4j.kernel.QuantKernels;
import java.util.Objects;

/**
 * A row-major float32 matrix view: element {@code (r, c)} is {@code data[offset + r * cols + c]}.
 *
 * <p>For a weight, row = output channel and column = input feature, as PyTorch's {@code nn.Linear} stores {@code W
 * [out, in]}. The view shares its array: nothing in quant4j writes to a matrix it was given. A name travels with the
 * matrix so that errors can say which tensor is wrong.
 */
public final class FloatMatrix {

    private final String name;
    private final int rows;
    private final int cols;
    private final float[] data;
    private final int offset;

    private FloatMatrix(String name, int rows, int cols, float[] data, int offset) {
        this.name = Objects.requireNonNull(name, "name");
        Objects.requireNonNull(data, "data");
        if (rows <= 0 || cols <= 0) {
            throw new IllegalArgumentException(
                    "tensor '" + name + "' is empty or has a negative dimension: [" + rows + ", " + cols + "]");
        }
        long size = (long) rows * cols;
        if (offset < 0 || offset + size > data.length) {
            throw new IllegalArgumentException("tensor '" + name + "': shape [" + rows + ", " + cols + "] at offset "
                    + offset + " needs " + size + " floats, array has " + data.length);
        }
        this.rows = rows;
        this.cols = cols;
        this.data = data;
        this.offset = offset;
    }

    /** A view of {@code data} as {@code [rows, cols]}, named {@code "tensor"}. */
    public static FloatMatrix of(int rows, int cols, float[] data) {
        return new FloatMatrix("tensor", rows, cols, data, 0);
    }

    /** A view of {@code data[offset ...]} as {@code [rows, cols]}. */
    public static FloatMatrix of(String name, int rows, int cols, float[] data, int offset) {
        return new FloatMatrix(name, rows, cols, data, offset);
    }

    /** A new zero matrix. */
    public static FloatMatrix zeros(String name, int rows, int cols) {
        if (rows <= 0 || cols <= 0) {
            throw new IllegalArgumentException(
                    "tensor '" + name + "' is empty or has a negative dimension: [" + rows + ", " + cols + "]");
        }
        return new FloatMatrix(name, rows, cols, new float[Math.multiplyExact(rows, cols)], 0);
    }

    /** The same data under another name. */
    public FloatMatrix named(String newName) {
        return new FloatMatrix(newName, rows, cols, data, offset);
    }

    public String name() {
        return name;
    }

    public int rows() {
        return rows;
    }

    public int cols() {
        return cols;
    }

    public long size() {
        return (long) rows * cols;
    }

    /** The backing array (shared, not copied); row {@code r} starts at {@link #rowOffset(int)}. */
    public float[] array() {
        return data;
    }

    /** Index in {@link #array()} of element {@code (r, 0)}. */
    public int rowOffset(int r) {
        return offset + r * cols;
    }

    public float get(int r, int c) {
        Objects.checkIndex(r, rows);
        Objects.checkIndex(c, cols);
        return data[offset + r * cols + c];
    }

    /** A copy of the elements in row-major order. */
    public float[] toArray() {
        float[] out = new float[Math.toIntExact(size())];
        System.arraycopy(data, offset, out, 0, out.length);
        return out;
    }

    /** A new {@code [cols, rows]} matrix, same name: element {@code (c, r)} is this one's {@code (r, c)}. */
    public FloatMatrix transpose() {
        float[] t = new float[Math.toIntExact(size())];
        for (int r = 0; r < rows; r++) {
            int base = rowOffset(r);
            for (int c = 0; c < cols; c++) {
                t[c * rows + r] = data[base + c];
            }
        }
        return new FloatMatrix(name, cols, rows, t, 0);
    }

    /**
     * Throws {@link IllegalArgumentException} naming this tensor and the first index holding NaN or an infinity.
     *
     * @return this matrix
     */
    public FloatMatrix requireFinite() {
        QuantKernels k = Kernels.get();
        for (int r = 0; r < rows; r++) {
            int base = rowOffset(r);
            if (k.allFinite(data, base, cols)) {
                continue; // the vectorized check; the loop below only runs to name the bad value
            }
            for (int c = 0; c < cols; c++) {
                float v = data[base + c];
                if (!Float.isFinite(v)) {
                    throw new IllegalArgumentException("tensor '" + name + "' has " + v + " at [" + r + ", " + c
                            + "] (flat index " + ((long) r * cols + c) + ")");
                }
            }
        }
        return this;
    }

    @Override
    public String toString() {
        return "FloatMatrix[" + name + ", " + rows + "x" + cols + "]";
    }
}
