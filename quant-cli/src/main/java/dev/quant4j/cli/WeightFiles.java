package dev.quant4j.cli;

import dev.quant4j.io.Npy;
import dev.quant4j.io.QuantizedSafeTensors.PassThrough;
import dev.quant4j.io.SafeTensors;
import dev.quant4j.tensor.FloatMatrix;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/** Reads the weights the commands work on, from {@code .npy} or {@code .safetensors}, and checks output paths. */
final class WeightFiles {

    /** Selected 2-D float tensors, and the tensors that pass through unchanged. */
    record Loaded(List<FloatMatrix> tensors, List<PassThrough> other) {}

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
            case "onnx" ->
                throw new IllegalArgumentException(
                        in + ": ONNX models are not supported yet; convert the weights to .npy or .safetensors");
            default ->
                throw new IllegalArgumentException("unsupported input " + in + " (expected .npy or .safetensors)");
        }
    }
}
