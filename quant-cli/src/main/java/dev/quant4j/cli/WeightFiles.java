package dev.quant4j.cli;

import dev.quant4j.io.DType;
import dev.quant4j.io.Npy;
import dev.quant4j.io.OnnxModel;
import dev.quant4j.io.QuantizedSafeTensors.PassThrough;
import dev.quant4j.io.SafeTensors;
import dev.quant4j.tensor.FloatMatrix;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Pattern;

/** Reads the weights the commands work on, from {@code .npy} or {@code .safetensors}, and checks output paths. */
final class WeightFiles {

    /**
     * Selected 2-D float tensors, the tensors that pass through unchanged, and the names of those that cannot be
     * written (an ONNX model's non-float initializers, such as INT64 shape constants).
     */
    record Loaded(List<FloatMatrix> tensors, List<PassThrough> other, List<String> skipped) {

        Loaded(List<FloatMatrix> tensors, List<PassThrough> other) {
            this(tensors, other, List.of());
        }
    }

    private WeightFiles() {}

    static String extension(Path p) {
        String n = p.getFileName().toString().toLowerCase(Locale.ROOT);
        int dot = n.lastIndexOf('.');
        return dot < 0 ? "" : n.substring(dot + 1);
    }

    static void requireReadable(Path p) throws IOException {
        if (!Files.exists(p)) {
            throw new NoSuchFileException(p.toString());
        }
        if (!Files.isRegularFile(p) || !Files.isReadable(p)) {
            throw new IllegalArgumentException("cannot read " + p + ": not a readable regular file");
        }
    }

    /** Checks that {@code out} has one of the extensions and that its folder exists. */
    static void requireWritable(Path out, String... extensions) {
        String ext = extension(out);
        if (!List.of(extensions).contains(ext)) {
            throw new IllegalArgumentException("output " + out + " must end in ." + String.join(" or .", extensions));
        }
        Path dir = out.toAbsolutePath().getParent();
        if (dir == null || !Files.isDirectory(dir)) {
            throw new IllegalArgumentException("output folder " + dir + " does not exist");
        }
        if (Files.isDirectory(out)) {
            throw new IllegalArgumentException("output " + out + " is a folder");
        }
    }

    /**
     * An ONNX model's initializers. Picked by default: the weights of its MatMul nodes (their second input), which
     * ONNX stores {@code [in, out]} and which are transposed here to the {@code [out, in]} every quantizer takes (so
     * that groups run along the input features); with {@code include}, the initializers whose names match (a matched
     * MatMul weight is transposed likewise, anything else must be a 2-D float and is taken as stored). The other FLOAT
     * initializers pass through as F32; non-float ones are listed as skipped.
     */
    static Loaded loadOnnx(Path in, Pattern include) throws IOException {
        OnnxModel model = OnnxModel.read(in);
        Set<String> matmulWeights = new HashSet<>(model.matMulWeights().values());
        List<FloatMatrix> selected = new ArrayList<>();
        List<PassThrough> other = new ArrayList<>();
        List<String> skipped = new ArrayList<>();
        for (OnnxModel.Initializer t : model.initializers().values()) {
            String name = t.name();
            boolean isMatmulWeight = matmulWeights.contains(name);
            boolean pick = include != null ? include.matcher(name).find() : isMatmulWeight;
            if (pick) {
                if (t.dataType() != OnnxModel.FLOAT || t.dims().length != 2) {
                    throw new IllegalArgumentException(in + ": initializer '" + name + "' matched by --include is not"
                            + " a 2-D float tensor (ONNX type " + t.dataType() + ", shape "
                            + java.util.Arrays.toString(t.dims()) + ")");
                }
                FloatMatrix m = t.matrix();
                selected.add(isMatmulWeight ? m.transpose() : m);
            } else if (t.dataType() == OnnxModel.FLOAT) {
                float[] v = t.floats();
                ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
                b.asFloatBuffer().put(v);
                other.add(new PassThrough(name, DType.F32, t.dims(), b.array()));
            } else {
                skipped.add(name);
            }
        }
        if (selected.isEmpty()) {
            throw new IllegalArgumentException(in + ": no MatMul weight"
                    + (include == null ? "" : " or initializer matches --include '" + include.pattern() + "'"));
        }
        return new Loaded(selected, other, skipped);
    }

    /**
     * Loads weights. A {@code .npy} file is one {@code [out, in]} float tensor named after the file. In a
     * {@code .safetensors} file, {@code include} (a regular expression found anywhere in the name) picks the tensors,
     * which must then be 2-D floats; without it every 2-D F32/F16/BF16 tensor is picked. The rest pass through.
     */
    static Loaded load(Path in, Pattern include) throws IOException {
        requireReadable(in);
        String ext = extension(in);
        switch (ext) {
            case "npy" -> {
                return new Loaded(List.of(Npy.readMatrix(in)), List.of());
            }
            case "safetensors" -> {
                List<FloatMatrix> selected = new ArrayList<>();
                List<PassThrough> other = new ArrayList<>();
                try (SafeTensors st = SafeTensors.open(in)) {
                    for (SafeTensors.Entry e : st.entries().values()) {
                        boolean pick = include != null
                                ? include.matcher(e.name()).find()
                                : e.shape().length == 2 && e.dtype().isFloat();
                        if (pick) {
                            selected.add(st.readMatrix(e.name()));
                        } else {
                            other.add(new PassThrough(e.name(), e.dtype(), e.shape(), st.readBytes(e.name())));
                        }
                    }
                }
                if (selected.isEmpty()) {
                    throw new IllegalArgumentException(in + ": no 2-D float tensor"
                            + (include == null ? "" : " matches --include '" + include.pattern() + "'"));
                }
                return new Loaded(selected, other);
            }
            case "onnx" -> {
                return loadOnnx(in, include);
            }
            default ->
                throw new IllegalArgumentException(
                        "unsupported input " + in + " (expected .npy, .safetensors or .onnx)");
        }
    }
}
