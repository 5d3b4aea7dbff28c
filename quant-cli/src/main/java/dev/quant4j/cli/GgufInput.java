package dev.quant4j.cli;

import dev.quant4j.ggml.GgmlType;
import dev.quant4j.io.DType;
import dev.quant4j.io.Gguf;
import dev.quant4j.io.Npy;
import dev.quant4j.io.SafeTensorsWriter;
import dev.quant4j.tensor.FloatMatrix;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** A GGUF file as {@code quant inspect} and {@code quant dequantize} read it. */
final class GgufInput {

    private GgufInput() {}

    /** The row-major shape of a tensor: its {@code ne[]} reversed ({@code ne = [in, out]} is {@code [out, in]}). */
    static long[] shape(long[] ne) {
        long[] s = new long[ne.length];
        for (int i = 0; i < ne.length; i++) {
            s[i] = ne[ne.length - 1 - i];
        }
        return s;
    }

    /** {@code quant inspect}: one row per tensor, block types with their bits per weight and {@code ggml TYPE}. */
    static List<InspectCommand.Row> inspect(Path in) throws IOException {
        List<InspectCommand.Row> rows = new ArrayList<>();
        try (Gguf g = Gguf.open(in)) {
            for (Gguf.TensorInfo t : g.tensors()) {
                boolean block = t.type().blockSize() > 1;
                rows.add(new InspectCommand.Row(
                        t.name(),
                        t.type().ggmlName(),
                        InspectCommand.shape(shape(t.ne())),
                        t.elements(),
                        t.bytes(),
                        block
                                ? String.format(
                                        Locale.ROOT,
                                        "%.3f",
                                        8.0 * t.type().typeSize() / t.type().blockSize())
                                : "",
                        block ? "ggml " + t.type().ggmlName() : "",
                        ""));
            }
        }
        return rows;
    }

    /**
     * {@code quant dequantize} of a GGUF file: every tensor in a block type quant4j dequantizes becomes float32 (or
     * {@code dtype}) in row-major shape; F32, F16, BF16, F64 and integer tensors pass through.
     */
    static int dequantize(Path in, Path out, DType dtype, PrintWriter pw) throws IOException {
        boolean npy = WeightFiles.extension(out).equals("npy");
        List<FloatMatrix> weights = new ArrayList<>();
        SafeTensorsWriter w = new SafeTensorsWriter();
        int kept = 0;
        try (Gguf g = Gguf.open(in)) {
            for (Gguf.TensorInfo t : g.tensors()) {
                GgmlType type = t.type();
                long[] shape = shape(t.ne());
                if (type.blockSize() > 1) {
                    if (!type.quantizable()) {
                        throw new IllegalArgumentException(in + ": tensor '" + t.name() + "' is " + type
                                + ", which quant4j does not dequantize (it does " + GgmlType.quantizableNames() + ")");
                    }
                    float[] v = g.readFloats(t.name());
                    FloatMatrix m = FloatMatrix.of(t.name(), (int) t.rows(), (int) t.rowLength(), v, 0);
                    weights.add(m);
                    w.add(t.name(), dtype, shape, DequantizeCommand.encode(v, dtype));
                } else {
                    w.add(t.name(), passThrough(in, t), shape, g.readBytes(t.name()));
                    kept++;
                }
            }
        }
        if (weights.isEmpty()) {
            throw new IllegalArgumentException(in + ": holds no tensor in a ggml block type");
        }
        if (npy) {
            if (weights.size() != 1) {
                throw new IllegalArgumentException(in + " holds " + weights.size()
                        + " quantized tensors; write them to a .safetensors file instead of .npy");
            }
            Npy.write(out, weights.get(0));
        } else {
            w.write(out);
        }
        pw.printf(
                Locale.ROOT,
                "wrote %s (%d %s dequantized to %s, %d unchanged)%n",
                out,
                weights.size(),
                weights.size() == 1 ? "tensor" : "tensors",
                npy ? "float32" : dtype.name(),
                npy ? 0 : kept);
        return Quant.OK;
    }

    private static DType passThrough(Path in, Gguf.TensorInfo t) {
        return switch (t.type()) {
            case F32 -> DType.F32;
            case F16 -> DType.F16;
            case BF16 -> DType.BF16;
            case F64 -> DType.F64;
            case I64 -> DType.I64;
            case I32 -> DType.I32;
            case I16 -> DType.I16;
            case I8 -> DType.I8;
            default ->
                throw new IllegalArgumentException(
                        in + ": tensor '" + t.name() + "' of type " + t.type() + " has no .safetensors dtype");
        };
    }
}
