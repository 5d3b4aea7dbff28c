package dev.quant4j.cli;

import dev.quant4j.io.Npy;
import dev.quant4j.io.OnnxModel;
import dev.quant4j.io.QuantizedSafeTensors;
import dev.quant4j.io.QuantizedSafeTensors.PassThrough;
import dev.quant4j.io.SafeTensors;
import dev.quant4j.tensor.FloatMatrix;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.function.BiFunction;
import java.util.regex.Pattern;

/** Reads the weights the commands work on, from {@code .npy}, {@code .safetensors} or {@code .onnx}, and checks paths. */
final class WeightFiles {

    /**
     * Names of a Hugging Face checkpoint's tensors that are not linear layers' weights although they are 2-D:
     * embedding tables and the output head. AutoGPTQ and llama.cpp's default recipes leave them unquantized (or at a
     * higher precision), and so does quant4j unless {@code --include} selects them.
     */
    static final Pattern NOT_LINEAR = Pattern.compile(
            "(^|\\.)(embed_tokens|lm_head|wte|wpe|word_embeddings|position_embeddings|token_type_embeddings"
                    + "|embed_positions|tok_embeddings|shared)(\\.|$)");

    /**
     * What a command works on: the 2-D float tensors to quantize, as {@code [out, in]} matrices; the names of those
     * whose file stores them transposed ({@code [in, out]}: ONNX MatMul weights); every other tensor, which passes
     * through unchanged in its own dtype; and the tensors kept unquantized that a user might have expected to be
     * quantized, each with the reason. For an {@code .onnx} input, also the file's bytes and the model parsed from
     * them (null otherwise), so that a command rewriting the model reads it once.
     */
    record Loaded(
            List<FloatMatrix> tensors,
            Set<String> transposed,
            List<PassThrough> other,
            List<Kept> kept,
            OnnxInput onnx) {}

    /** An ONNX input as read: its bytes and its parsed model. */
    record OnnxInput(byte[] bytes, OnnxModel model) {}

    /** A tensor left as it was, and why. */
    record Kept(String name, String reason) {}

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
     * Refuses an output that is one of the command's inputs (the same file after resolving links and relative paths),
     * unless {@code overwrite}: the output is written atomically over the input only when asked to.
     */
    static void requireNotAnInput(Path out, boolean overwrite, String option, Path in) throws IOException {
        if (!overwrite && in != null && Files.exists(out) && Files.exists(in) && Files.isSameFile(in, out)) {
            throw new IllegalArgumentException("--out " + out + " is the " + option + " file " + in
                    + "; write to another file (or pass --overwrite to replace the input)");
        }
    }

    /**
     * Loads the tensors to quantize. A {@code .npy} file is one {@code [out, in]} float tensor named after the file. In
     * a {@code .safetensors} file, {@code include} (a regular expression found anywhere in the name) picks the tensors,
     * which must then be 2-D floats; without it, every 2-D F32/F16/BF16 tensor except embedding tables and the output
     * head ({@link #NOT_LINEAR}). In an {@code .onnx} model, the weights of its MatMul nodes, or the initializers
     * {@code include} matches. {@code unsupported} says, for a picked tensor of shape {@code [out, in]} and name, why
     * the chosen scheme cannot quantize it (or null): such a tensor is kept as it is and listed.
     *
     * @throws IllegalArgumentException for a file quant4j already quantized, a tensor {@code include} picks that is
     *     not a 2-D float, or a file in which nothing is picked
     */
    static Loaded load(Path in, Pattern include, BiFunction<String, int[], String> unsupported) throws IOException {
        requireReadable(in);
        return switch (extension(in)) {
            case "npy" -> {
                FloatMatrix m = Npy.readMatrix(in);
                String reason = unsupported.apply(m.name(), new int[] {m.rows(), m.cols()});
                if (reason != null) {
                    throw new IllegalArgumentException("tensor '" + m.name() + "': " + reason);
                }
                yield new Loaded(List.of(m), Set.of(), List.of(), List.of(), null);
            }
            case "safetensors" -> loadSafeTensors(in, include, unsupported);
            case "onnx" -> loadOnnx(in, include, unsupported);
            default ->
                throw new IllegalArgumentException(
                        "unsupported input " + in + " (expected .npy, .safetensors or .onnx)");
        };
    }

    private static Loaded loadSafeTensors(Path in, Pattern include, BiFunction<String, int[], String> unsupported)
            throws IOException {
        List<FloatMatrix> selected = new ArrayList<>();
        List<PassThrough> other = new ArrayList<>();
        List<Kept> kept = new ArrayList<>();
        try (SafeTensors st = SafeTensors.open(in)) {
            String format = st.metadata().get(QuantizedSafeTensors.FORMAT_KEY);
            if (format != null) {
                throw new IllegalArgumentException(in + " is already quantized by quant4j (format " + format
                        + "); quantize the original weights, or 'quant dequantize' it first");
            }
            for (SafeTensors.Entry e : st.entries().values()) {
                boolean matrix = e.shape().length == 2 && e.dtype().isFloat();
                boolean pick;
                if (include != null) {
                    pick = include.matcher(e.name()).find();
                    if (pick && !matrix) {
                        throw new IllegalArgumentException(in + ": tensor '" + e.name() + "' matched by --include is"
                                + " not a 2-D float tensor (" + e.dtype() + " " + Arrays.toString(e.shape()) + ")");
                    }
                } else {
                    pick = matrix && !NOT_LINEAR.matcher(e.name()).find();
                    if (matrix && !pick) {
                        kept.add(new Kept(e.name(), "an embedding or output head (select it with --include)"));
                    }
                }
                String reason = pick ? unsupported.apply(e.name(), shape(e.shape())) : null;
                if (reason != null) {
                    kept.add(new Kept(e.name(), reason));
                    pick = false;
                }
                if (pick) {
                    selected.add(st.readMatrix(e.name()));
                } else {
                    other.add(new PassThrough(e.name(), e.dtype(), e.shape(), st.readBytes(e.name())));
                }
            }
        }
        if (selected.isEmpty()) {
            throw new IllegalArgumentException(in + ": no tensor to quantize"
                    + (include == null ? " (no 2-D float tensor)" : " (--include '" + include.pattern() + "')")
                    + describeKept(kept));
        }
        return new Loaded(selected, Set.of(), other, kept, null);
    }

    /**
     * An ONNX model's initializers. Picked by default: the weights of its MatMul nodes (their second input), which
     * ONNX stores {@code [in, out]} and which are transposed here to the {@code [out, in]} every quantizer takes (so
     * that groups run along the input features); with {@code include}, the initializers whose names match (a matched
     * MatMul weight is transposed likewise, anything else must be a 2-D float and is taken as stored). Every other
     * initializer passes through in its own type (INT64 {@code position_ids} included).
     */
    private static Loaded loadOnnx(Path in, Pattern include, BiFunction<String, int[], String> unsupported)
            throws IOException {
        OnnxSelection s = selectOnnx(in, include, unsupported);
        List<FloatMatrix> selected = new ArrayList<>();
        for (String name : s.selected()) {
            FloatMatrix m = s.onnx().model().initializer(name).matrix();
            selected.add(s.transposed().contains(name) ? m.transpose() : m);
        }
        List<PassThrough> other = new ArrayList<>();
        for (String name : s.other()) {
            OnnxModel.Initializer t = s.onnx().model().initializer(name);
            other.add(new PassThrough(name, t.dtype(), t.dims(), t.bytes()));
        }
        return new Loaded(selected, s.transposed(), other, s.kept(), s.onnx());
    }

    /**
     * Which initializers of an ONNX model {@link #load} would quantize ({@code selected}, in the file's order; those in
     * {@code transposed} are MatMul weights, quantized {@code [out, in]}), which it passes through ({@code other}) and
     * which it keeps although they were picked, with the reason; no tensor's values are read.
     */
    record OnnxSelection(
            OnnxInput onnx, List<String> selected, Set<String> transposed, List<String> other, List<Kept> kept) {}

    /** The selection of {@link #loadOnnx}, without reading the values. */
    static OnnxSelection selectOnnx(Path in, Pattern include, BiFunction<String, int[], String> unsupported)
            throws IOException {
        requireReadable(in);
        byte[] bytes = OnnxModel.readBytes(in);
        OnnxModel model =
                OnnxModel.parse(in.toString(), bytes, in.toAbsolutePath().getParent());
        Set<String> matmulWeights = new HashSet<>(model.matMulWeights().values());
        List<String> selected = new ArrayList<>();
        Set<String> transposed = new LinkedHashSet<>();
        List<String> other = new ArrayList<>();
        List<Kept> kept = new ArrayList<>();
        for (OnnxModel.Initializer t : model.initializers().values()) {
            String name = t.name();
            boolean isMatmulWeight = matmulWeights.contains(name);
            boolean pick = include != null ? include.matcher(name).find() : isMatmulWeight;
            if (pick && (t.dataType() != OnnxModel.FLOAT || t.dims().length != 2)) {
                throw new IllegalArgumentException(in + ": initializer '" + name + "' matched by --include is not"
                        + " a 2-D float tensor (ONNX type " + OnnxModel.typeName(t.dataType()) + ", shape "
                        + Arrays.toString(t.dims()) + ")");
            }
            if (pick) {
                long[] d = t.dims();
                int[] outIn = isMatmulWeight ? new int[] {(int) d[1], (int) d[0]} : new int[] {(int) d[0], (int) d[1]};
                String reason = unsupported.apply(name, outIn);
                if (reason != null) {
                    kept.add(new Kept(name, reason));
                    pick = false;
                }
            }
            if (pick) {
                selected.add(name);
                if (isMatmulWeight) {
                    transposed.add(name);
                }
            } else {
                if (t.dtype() == null) {
                    throw new IllegalArgumentException(in + ": initializer '" + name + "' is of ONNX type "
                            + OnnxModel.typeName(t.dataType()) + ", which a .safetensors file cannot hold");
                }
                other.add(name);
            }
        }
        if (selected.isEmpty()) {
            throw new IllegalArgumentException(in + ": no MatMul weight"
                    + (include == null ? "" : " or initializer matches --include '" + include.pattern() + "'")
                    + describeKept(kept));
        }
        return new OnnxSelection(new OnnxInput(bytes, model), selected, transposed, other, kept);
    }

    private static int[] shape(long[] s) {
        return new int[] {Math.toIntExact(s[0]), Math.toIntExact(s[1])};
    }

    private static String describeKept(List<Kept> kept) {
        if (kept.isEmpty()) {
            return "";
        }
        Kept k = kept.get(0);
        return "; '" + k.name() + "' " + k.reason() + (kept.size() > 1 ? ", and " + (kept.size() - 1) + " more" : "");
    }
}
