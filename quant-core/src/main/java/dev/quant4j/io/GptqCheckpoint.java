package dev.quant4j.io;

import dev.quant4j.internal.Json;
import dev.quant4j.io.QuantizedSafeTensors.PassThrough;
import dev.quant4j.quant.CodebookTensor;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.PackOrder;
import dev.quant4j.scheme.Symmetry;
import dev.quant4j.tensor.HalfFloats;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

/**
 * GPTQ checkpoints in the layout AutoGPTQ and GPTQModel save and transformers, vLLM and TGI load ({@code
 * checkpoint_format "gptq"}, AutoGPTQ's "v1").
 *
 * <p>A linear layer {@code P} with weight {@code P.weight [out, in]} becomes (AutoGPTQ {@code
 * auto_gptq/nn_modules/qlinear/qlinear_cuda.py}, {@code QuantLinear.__init__} and {@code pack}):
 *
 * <ul>
 *   <li>{@code P.qweight}: I32 {@code [in * bits / 32, out]}. Column {@code o} is one little-endian bit stream over the
 *       words of that column: code {@code (o, i)} occupies bits {@code [i * bits, (i + 1) * bits)}, so 32 / bits codes
 *       per word at 2, 4 and 8 bits, and at 3 bits 32 codes across 3 words, codes 10 and 21 straddling a word
 *       boundary (exactly what {@code pack}'s 3-bit branch writes);
 *   <li>{@code P.qzeros}: I32 {@code [groups, out * bits / 32]}, the zero-points minus one (v1), packed the same way
 *       along the output channels;
 *   <li>{@code P.scales}: F16 {@code [groups, out]};
 *   <li>{@code P.g_idx}: I32 {@code [in]}, the group of each input feature ({@code i / group_size} without act-order).
 * </ul>
 *
 * <p>Element {@code (o, i)} stands for {@code scales[g, o] * (code - (qzero + 1))} with {@code g = g_idx[i]}, the
 * formula of {@code QuantLinear.forward}'s torch path. Since v1 stores {@code zero - 1}, a zero-point of 0 cannot be
 * stored: AutoGPTQ's own {@code pack} turns it into {@code 0xFFFFFFFF} and corrupts the neighbouring zero-points of
 * the word, so the writer refuses such a tensor instead. GPTQ's symmetric form has zero-point {@code 2^(bits-1)}, so
 * its {@code qzeros} hold {@code 2^(bits-1) - 1}.
 *
 * <p>The reader also takes GPTQModel's {@code checkpoint_format "gptq_v2"}, whose {@code qzeros} hold the zero-points
 * themselves.
 */
public final class GptqCheckpoint {

    public static final String QUANTIZE_CONFIG = "quantize_config.json";
    public static final String HF_CONFIG = "config.json";
    /** The weight file quant4j writes: the name transformers looks for; {@code model_file_base_name} is "model". */
    public static final String MODEL_FILE = "model.safetensors";

    public static final String QWEIGHT = ".qweight";
    public static final String QZEROS = ".qzeros";
    public static final String SCALES = ".scales";
    public static final String G_IDX = ".g_idx";
    private static final String WEIGHT = ".weight";

    /** What {@code quantize_config.json} says that the weights themselves do not. */
    public record Options(double dampPercent, boolean staticGroups, boolean trueSequential) {
        public Options {
            if (!(dampPercent > 0 && dampPercent < 1)) {
                // AutoGPTQ's BaseQuantizeConfig refuses a file with another value
                throw new IllegalArgumentException("damp_percent must be in (0, 1), got " + dampPercent);
            }
        }

        /** AutoGPTQ's defaults for the fields quant4j does not decide: damping 0.01, no static groups. */
        public static Options defaults() {
            return new Options(0.01, false, true);
        }
    }

    /** One layer in the checkpoint's layout: the arrays of {@code qweight}, {@code qzeros}, {@code scales}, g_idx. */
    public record Packed(int in, int out, int groups, int[] qweight, int[] qzeros, short[] scales, int[] gIdx) {}

    /** The content of a checkpoint: the quantized layers (as {@code P.weight}) and every other tensor, plus config. */
    public record Checkpoint(QuantizedSafeTensors.Content content, Map<String, Object> quantizeConfig) {}

    private GptqCheckpoint() {}

    /** Bits a GPTQ checkpoint holds ({@code QuantLinear} raises for any other). */
    public static boolean supportedBits(int bits) {
        return bits == 2 || bits == 3 || bits == 4 || bits == 8;
    }

    /**
     * Why {@code w} cannot be stored in a GPTQ checkpoint, or null. Fits: a linear tensor (RTN or GPTQ, asymmetric,
     * GPTQ-symmetric or signed) at 2, 3, 4 or 8 bits, per channel or per group, named {@code P.weight}, with {@code
     * in * bits} and {@code out * bits} multiples of 32, no zero-point 0 and scales within FP16's range.
     */
    public static String unsupported(QuantizedWeight w) {
        String fits = "a GPTQ checkpoint holds linear rtn/gptq tensors at 2, 3, 4 or 8 bits, per channel or per group";
        return switch (w) {
            case CodebookTensor c -> c.scheme() + " codes are a codebook's, not linear; " + fits;
            case QuantizedTensor q -> unsupportedLinear(q, fits);
        };
    }

    private static String unsupportedLinear(QuantizedTensor q, String fits) {
        LinearScheme s = q.scheme();
        if (!supportedBits(s.bits())) {
            return s.bits() + "-bit codes; " + fits;
        }
        if (s.groupSize() == LinearScheme.PER_TENSOR) {
            return "one scale per tensor; " + fits;
        }
        if (q.hasInputScales()) {
            return "AWQ input scales have no place in the GPTQ layout (they would have to be folded into the previous"
                    + " operation); " + fits;
        }
        if (!q.name().endsWith(WEIGHT)) {
            return "the name does not end in '" + WEIGHT + "' (the checkpoint stores P.qweight for P.weight)";
        }
        int in = q.cols();
        int out = q.rows();
        int multiple = 32 / gcd(32, s.bits());
        if ((long) in * s.bits() % 32 != 0) {
            return in + " input features at " + s.bits() + " bits do not fill whole int32 words of qweight (needs a"
                    + " multiple of " + multiple + ")";
        }
        if ((long) out * s.bits() % 32 != 0) {
            return out + " output channels at " + s.bits() + " bits do not fill whole int32 words of qzeros (needs a"
                    + " multiple of " + multiple + ")";
        }
        int groups = s.groupsPerRow(in);
        for (int o = 0; o < out; o++) {
            for (int g = 0; g < groups; g++) {
                int k = o * groups + g;
                if (q.zero(k) == 0) {
                    return "output channel " + o + ", group " + g + " has zero-point 0, which checkpoint_format gptq"
                            + " cannot store (qzeros hold zero - 1); the symmetric form (--sym) always fits";
                }
                float h = HalfFloats.fp16ToFloat(HalfFloats.floatToFp16(q.scale(k)));
                if (!(h > 0) || Float.isInfinite(h)) {
                    return "output channel " + o + ", group " + g + " has scale " + q.scale(k)
                            + ", outside FP16's range";
                }
            }
        }
        return null;
    }

    private static int gcd(int a, int b) {
        return b == 0 ? a : gcd(b, a % b);
    }

    /**
     * Packs one tensor into the checkpoint's arrays: codes and zero-points as AutoGPTQ's {@code QuantLinear.pack}
     * writes them, scales rounded to FP16 (nearest even, as {@code .half()}), the g_idx as stored.
     *
     * @throws IllegalArgumentException naming the tensor if {@link #unsupported} gives a reason
     */
    public static Packed pack(QuantizedTensor q) {
        String reason = unsupported(q);
        if (reason != null) {
            throw new IllegalArgumentException("tensor '" + q.name() + "': " + reason);
        }
        int bits = q.scheme().bits();
        int out = q.rows();
        int in = q.cols();
        int groups = q.scheme().groupsPerRow(in);
        int words = in * bits / 32;
        int[] qweight = new int[words * out];
        for (int o = 0; o < out; o++) {
            byte[] codes = q.rowCodes(o);
            for (int i = 0; i < in; i++) {
                put(qweight, out, o, i * bits, codes[i] & 0xFF, bits);
            }
        }
        int zeroWords = out * bits / 32;
        int[] qzeros = new int[groups * zeroWords];
        short[] scales = new short[groups * out];
        for (int o = 0; o < out; o++) {
            for (int g = 0; g < groups; g++) {
                int k = o * groups + g;
                // v1: zero - 1 (unsupported() has excluded a zero of 0)
                put(qzeros, 1, g * zeroWords, o * bits, q.zero(k) - 1, bits);
                scales[g * out + o] = HalfFloats.floatToFp16(q.scale(k));
            }
        }
        return new Packed(in, out, groups, qweight, qzeros, scales, q.gIdx());
    }

    /**
     * ORs {@code value} into the bit stream at bit {@code bit}: word {@code w} of the stream is {@code a[base + w *
     * stride]}, little-endian; a value crossing a word boundary continues in the next word's low bits.
     */
    private static void put(int[] a, int stride, int base, long bit, int value, int bits) {
        int w = (int) (bit >>> 5);
        int shift = (int) (bit & 31);
        a[base + w * stride] |= value << shift;
        if (shift + bits > 32) {
            a[base + (w + 1) * stride] |= value >>> (32 - shift);
        }
    }

    private static int get(int[] a, int stride, int base, long bit, int bits) {
        int w = (int) (bit >>> 5);
        int shift = (int) (bit & 31);
        long v = (a[base + w * stride] & 0xFFFFFFFFL) >>> shift;
        if (shift + bits > 32) {
            v |= (a[base + (w + 1) * stride] & 0xFFFFFFFFL) << (32 - shift);
        }
        return (int) (v & ((1 << bits) - 1));
    }

    /**
     * Writes a checkpoint folder atomically: the folder is built beside {@code dir} under a temporary name and renamed
     * to {@code dir} when complete, so a failure leaves nothing. It holds {@value #MODEL_FILE} (each weight's four
     * tensors, then {@code other} unchanged), {@value #QUANTIZE_CONFIG}, and, for a Hugging Face folder {@code
     * hfFolder} (may be null), its {@value #HF_CONFIG} with {@code quantization_config} added and its other files
     * that are not weights (tokenizer, generation config) copied.
     *
     * @param replace whether an existing {@code dir} may be replaced (otherwise it is an error)
     * @throws IllegalArgumentException if a weight does not fit (naming it, see {@link #unsupported}), the weights
     *     disagree on bits or group size, or a name is taken twice
     */
    public static void write(
            Path dir,
            List<? extends QuantizedWeight> weights,
            List<PassThrough> other,
            Options options,
            Path hfFolder,
            boolean replace)
            throws IOException {
        Path target = dir.toAbsolutePath().normalize();
        if (Files.exists(target) && !replace) {
            throw new IllegalArgumentException("output folder " + dir + " exists");
        }
        if (Files.exists(target) && !Files.isDirectory(target)) {
            throw new IllegalArgumentException("output " + dir + " exists and is not a folder");
        }
        Map<String, Object> config = quantizeConfig(weights, options);
        Map<String, byte[]> files = files(weights, other, config);
        Path parent = target.getParent();
        if (parent == null || !Files.isDirectory(parent)) {
            throw new IllegalArgumentException("output folder's parent " + parent + " does not exist");
        }
        Path tmp = Files.createTempDirectory(parent, "." + target.getFileName() + ".");
        boolean done = false;
        try {
            for (Map.Entry<String, byte[]> f : files.entrySet()) {
                Files.write(tmp.resolve(f.getKey()), f.getValue());
            }
            if (hfFolder != null) {
                copyHfFiles(hfFolder, tmp, config);
            }
            moveInto(tmp, target, replace);
            done = true;
        } finally {
            if (!done) {
                deleteTree(tmp);
            }
        }
    }

    /**
     * The files {@link #write} puts in a folder without a Hugging Face folder to copy: {@value #MODEL_FILE} and {@value
     * #QUANTIZE_CONFIG}, by name, in memory.
     *
     * @throws IllegalArgumentException as {@link #write} does
     */
    public static Map<String, byte[]> toFiles(
            List<? extends QuantizedWeight> weights, List<PassThrough> other, Options options) {
        return files(weights, other, quantizeConfig(weights, options));
    }

    private static Map<String, byte[]> files(
            List<? extends QuantizedWeight> weights, List<PassThrough> other, Map<String, Object> config) {
        Map<String, byte[]> files = new LinkedHashMap<>();
        files.put(MODEL_FILE, modelBytes(weights, other, config));
        files.put(QUANTIZE_CONFIG, prettyConfig(config).getBytes(StandardCharsets.UTF_8));
        return files;
    }

    private static Map<String, Object> quantizeConfig(List<? extends QuantizedWeight> weights, Options options) {
        if (weights.isEmpty()) {
            throw new IllegalArgumentException("a GPTQ checkpoint needs at least one quantized tensor");
        }
        Integer bits = null;
        Integer groupSize = null;
        boolean sym = true;
        boolean descAct = false;
        for (QuantizedWeight w : weights) {
            String reason = unsupported(w);
            if (reason != null) {
                throw new IllegalArgumentException("tensor '" + w.name() + "': " + reason);
            }
            QuantizedTensor q = (QuantizedTensor) w;
            int b = q.scheme().bits();
            int g = q.scheme().groupSize() == LinearScheme.PER_CHANNEL
                    ? -1
                    : q.scheme().groupSize();
            if (bits == null) {
                bits = b;
                groupSize = g;
            } else if (bits != b || groupSize != g) {
                throw new IllegalArgumentException("tensor '" + q.name() + "' has " + b + " bits, group size " + g
                        + ", the others " + bits + " bits, group size " + groupSize
                        + "; a GPTQ checkpoint has one quantize_config for every layer");
            }
            Symmetry s = q.scheme().symmetry();
            // signed codes are stored offset by 2^(bits-1): the zero-point of GPTQ's symmetric form
            sym &= s == Symmetry.SYM || s == Symmetry.SIGNED;
            descAct |= q.hasGIdx();
        }
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("bits", (long) bits);
        c.put("group_size", (long) groupSize);
        c.put("damp_percent", options.dampPercent());
        c.put("desc_act", descAct);
        c.put("static_groups", options.staticGroups());
        c.put("sym", sym);
        c.put("true_sequential", options.trueSequential());
        c.put("model_name_or_path", null);
        c.put("model_file_base_name", "model");
        c.put("quant_method", "gptq");
        c.put("checkpoint_format", "gptq");
        return c;
    }

    /** The config as AutoGPTQ's {@code json.dump(..., indent=2)} lays it out. */
    private static String prettyConfig(Map<String, Object> config) {
        StringBuilder b = new StringBuilder("{\n");
        int i = 0;
        for (Map.Entry<String, Object> e : config.entrySet()) {
            b.append("  ").append(Json.quote(e.getKey())).append(": ").append(Json.write(e.getValue()));
            b.append(++i < config.size() ? ",\n" : "\n");
        }
        return b.append("}").toString();
    }

    private static byte[] modelBytes(
            List<? extends QuantizedWeight> weights, List<PassThrough> other, Map<String, Object> config) {
        SafeTensorsWriter w = new SafeTensorsWriter();
        // what AutoGPTQ's save_quantized puts in the header; "format": "pt" is what transformers checks
        w.metadata("format", "pt");
        w.metadata("gptq_bits", String.valueOf(config.get("bits")));
        w.metadata("gptq_group_size", String.valueOf(config.get("group_size")));
        w.metadata("gptq_desc_act", Boolean.TRUE.equals(config.get("desc_act")) ? "True" : "False");
        w.metadata("gptq_damp_percent", String.valueOf(config.get("damp_percent")));
        w.metadata("gptq_checkpoint_format", "gptq");
        w.metadata("gptq_quant_method", "gptq");
        Set<String> names = new HashSet<>();
        for (QuantizedWeight qw : weights) {
            QuantizedTensor q = (QuantizedTensor) qw;
            Packed p = pack(q);
            String prefix = q.name().substring(0, q.name().length() - WEIGHT.length());
            int bits = q.scheme().bits();
            for (String part : List.of(QWEIGHT, QZEROS, SCALES, G_IDX)) {
                if (!names.add(prefix + part)) {
                    throw new IllegalArgumentException("two tensors named '" + prefix + part + "'");
                }
            }
            w.add(prefix + QWEIGHT, DType.I32, new long[] {p.in() * bits / 32, p.out()}, ints(p.qweight()));
            w.add(prefix + QZEROS, DType.I32, new long[] {p.groups(), p.out() * bits / 32}, ints(p.qzeros()));
            ByteBuffer s = ByteBuffer.allocate(2 * p.scales().length).order(ByteOrder.LITTLE_ENDIAN);
            s.asShortBuffer().put(p.scales());
            w.add(prefix + SCALES, DType.F16, new long[] {p.groups(), p.out()}, s.array());
            w.add(prefix + G_IDX, DType.I32, new long[] {p.in()}, ints(p.gIdx()));
        }
        for (PassThrough t : other) {
            if (!names.add(t.name())) {
                throw new IllegalArgumentException("two tensors named '" + t.name() + "'");
            }
            w.add(t.name(), t.dtype(), t.shape(), t.bytes());
        }
        return w.toBytes();
    }

    private static byte[] ints(int[] v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asIntBuffer().put(v);
        return b.array();
    }

    /** Files of a Hugging Face folder that are weights or configs this writer replaces: not copied. */
    private static boolean isWeightOrConfig(String name) {
        String n = name.toLowerCase(Locale.ROOT);
        return n.endsWith(".safetensors")
                || n.endsWith(".bin")
                || n.endsWith(".pt")
                || n.endsWith(".pth")
                || n.endsWith(".gguf")
                || n.endsWith(".onnx")
                || n.endsWith(".index.json")
                || n.equals(HF_CONFIG)
                || n.equals(QUANTIZE_CONFIG)
                || n.startsWith(".");
    }

    private static void copyHfFiles(Path hfFolder, Path tmp, Map<String, Object> quantizeConfig) throws IOException {
        Path configFile = hfFolder.resolve(HF_CONFIG);
        if (Files.isRegularFile(configFile)) {
            String text = Files.readString(configFile, StandardCharsets.UTF_8);
            Object parsed;
            try {
                parsed = Json.parse(text);
            } catch (IllegalArgumentException e) {
                throw new MalformedTensorFileException(configFile + ": " + e.getMessage(), e);
            }
            if (!(parsed instanceof Map<?, ?> map)) {
                throw new MalformedTensorFileException(configFile + ": not a JSON object");
            }
            Map<Object, Object> hf = new LinkedHashMap<>(map);
            hf.put("quantization_config", quantizeConfig);
            Files.writeString(tmp.resolve(HF_CONFIG), Json.write(hf) + "\n", StandardCharsets.UTF_8);
        }
        try (DirectoryStream<Path> files = Files.newDirectoryStream(hfFolder)) {
            for (Path f : files) {
                if (Files.isRegularFile(f) && !isWeightOrConfig(f.getFileName().toString())) {
                    Files.copy(f, tmp.resolve(f.getFileName().toString()));
                }
            }
        }
    }

    private static void moveInto(Path tmp, Path target, boolean replace) throws IOException {
        Path old = null;
        if (Files.exists(target)) {
            if (!replace) {
                throw new IllegalArgumentException("output folder " + target + " exists");
            }
            old = Files.createTempDirectory(target.getParent(), "." + target.getFileName() + ".old.");
            Files.delete(old);
            Files.move(target, old, StandardCopyOption.ATOMIC_MOVE);
        }
        try {
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(tmp, target);
        } catch (IOException e) {
            if (old != null) {
                Files.move(old, target, StandardCopyOption.ATOMIC_MOVE);
            }
            throw e;
        }
        if (old != null) {
            deleteTree(old);
        }
    }

    private static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root)) {
            return;
        }
        try (Stream<Path> all = Files.walk(root)) {
            for (Path p : all.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Reading

    /**
     * Reads a GPTQ checkpoint: a folder with {@value #QUANTIZE_CONFIG} (or a {@value #HF_CONFIG} with {@code
     * quantization_config}) and one {@code .safetensors} file ({@code model_file_base_name}, {@value #MODEL_FILE} or
     * AutoGPTQ's {@code gptq_model-4bit-128g}), or such a {@code .safetensors} file with the config beside it. Each
     * {@code P.qweight} with its {@code P.qzeros}, {@code P.scales} and {@code P.g_idx} (optional: natural order)
     * becomes a quantized tensor {@code P.weight}; every other tensor passes through.
     *
     * @throws MalformedTensorFileException naming the file, tensor and field for anything inconsistent
     */
    public static Checkpoint read(Path path) throws IOException {
        if (Files.isDirectory(path)) {
            return read(ModelFolder.of(path));
        }
        Path file = path.toAbsolutePath();
        return read(ModelFolder.of(file.getParent()), file.getFileName().toString());
    }

    /** {@link #read(Path)} of a folder on disk or in memory ({@link ModelFolder#of(Map, String)}). */
    public static Checkpoint read(ModelFolder folder) throws IOException {
        return read(folder, null);
    }

    /** Reads the checkpoint in {@code folder} from its weight file {@code modelFile}, or the one its config names. */
    private static Checkpoint read(ModelFolder folder, String modelFile) throws IOException {
        Map<String, Object> config = readConfig(folder);
        String where = folder.where(QUANTIZE_CONFIG);
        int bits = intField(config, "bits", where);
        if (!supportedBits(bits)) {
            throw new MalformedTensorFileException(where + ": bits " + bits + " (a GPTQ checkpoint has 2, 3, 4 or 8)");
        }
        int groupSize = intField(config, "group_size", where);
        if (groupSize == 0 || groupSize < -1) {
            throw new MalformedTensorFileException(where + ": group_size " + groupSize + " (expected -1 or positive)");
        }
        Object method = config.get("quant_method");
        if (method != null && !"gptq".equals(String.valueOf(method).toLowerCase(Locale.ROOT))) {
            throw new MalformedTensorFileException(where + ": quant_method '" + method + "' is not gptq");
        }
        Object fmt = config.getOrDefault("checkpoint_format", "gptq");
        boolean v2 = switch (String.valueOf(fmt).toLowerCase(Locale.ROOT)) {
            case "gptq" -> false;
            case "gptq_v2" -> true;
            default ->
                throw new MalformedTensorFileException(
                        where + ": checkpoint_format '" + fmt + "' (quant4j reads gptq and gptq_v2)");
        };
        String file = modelFile != null ? modelFile : modelFile(folder, config, bits, groupSize);
        try (SafeTensors st = folder.openSafeTensors(file)) {
            return new Checkpoint(readTensors(st, folder.where(file), bits, groupSize, v2), config);
        }
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> readConfig(ModelFolder folder) throws IOException {
        String from = folder.has(QUANTIZE_CONFIG) ? QUANTIZE_CONFIG : HF_CONFIG;
        if (!folder.has(from)) {
            throw new MalformedTensorFileException(
                    folder.name() + ": no " + QUANTIZE_CONFIG + " or " + HF_CONFIG + " with quantization_config");
        }
        String where = folder.where(from);
        Object parsed;
        try {
            parsed = Json.parse(folder.readString(from));
        } catch (MalformedTensorFileException e) {
            throw e;
        } catch (IllegalArgumentException e) {
            throw new MalformedTensorFileException(where + ": " + e.getMessage(), e);
        }
        if (!(parsed instanceof Map<?, ?> map)) {
            throw new MalformedTensorFileException(where + ": not a JSON object");
        }
        if (from.equals(HF_CONFIG)) {
            if (!(map.get("quantization_config") instanceof Map<?, ?> inner)) {
                throw new MalformedTensorFileException(folder.name() + ": no " + QUANTIZE_CONFIG + ", and " + HF_CONFIG
                        + " has no quantization_config");
            }
            map = inner;
        }
        return (Map<String, Object>) map;
    }

    private static int intField(Map<String, Object> config, String key, String where) {
        if (!(config.get(key) instanceof Long v) || v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) {
            throw new MalformedTensorFileException(where + ": field '" + key + "' is missing or not an integer");
        }
        return v.intValue();
    }

    private static String modelFile(ModelFolder folder, Map<String, Object> config, int bits, int groupSize) {
        List<String> names = new ArrayList<>();
        if (config.get("model_file_base_name") instanceof String base) {
            names.add(base + ".safetensors");
        }
        names.add(MODEL_FILE);
        names.add("gptq_model-" + bits + "bit-" + groupSize + "g.safetensors");
        for (String n : names) {
            if (folder.has(n)) {
                return n;
            }
        }
        if (folder.has(MODEL_FILE + ".index.json")) {
            throw new IllegalArgumentException(folder.name() + ": a sharded checkpoint (" + MODEL_FILE
                    + ".index.json); quant4j reads single-file GPTQ checkpoints");
        }
        throw new MalformedTensorFileException(
                folder.name() + ": no weight file (looked for " + String.join(", ", names) + ")");
    }

    private static QuantizedSafeTensors.Content readTensors(
            SafeTensors st, String source, int bits, int groupSize, boolean v2) {
        Map<String, QuantizedWeight> weights = new LinkedHashMap<>();
        Map<String, String> methods = new LinkedHashMap<>();
        Set<String> owned = new HashSet<>();
        for (String name : st.names()) {
            if (!name.endsWith(QWEIGHT)) {
                continue;
            }
            String prefix = name.substring(0, name.length() - QWEIGHT.length());
            QuantizedTensor q = readLayer(st, source, prefix, bits, groupSize, v2);
            weights.put(q.name(), q);
            methods.put(q.name(), "gptq");
            owned.addAll(List.of(prefix + QWEIGHT, prefix + QZEROS, prefix + SCALES, prefix + G_IDX));
        }
        List<PassThrough> other = new ArrayList<>();
        for (SafeTensors.Entry e : st.entries().values()) {
            if (owned.contains(e.name())) {
                continue;
            }
            for (String part : List.of(QZEROS, G_IDX)) {
                if (e.name().endsWith(part)) {
                    throw new MalformedTensorFileException(source + ": tensor '" + e.name() + "' has no '"
                            + e.name().substring(0, e.name().length() - part.length()) + QWEIGHT + "'");
                }
            }
            if (weights.containsKey(e.name())) {
                throw new MalformedTensorFileException(
                        source + ": tensor '" + e.name() + "' is both stored and made from its qweight");
            }
            other.add(new PassThrough(e.name(), e.dtype(), e.shape(), st.readBytes(e.name())));
        }
        if (weights.isEmpty()) {
            throw new MalformedTensorFileException(source + ": no '*" + QWEIGHT + "' tensor, not a GPTQ checkpoint");
        }
        return new QuantizedSafeTensors.Content(weights, methods, Set.of(), other);
    }

    private static QuantizedTensor readLayer(
            SafeTensors st, String source, String prefix, int bits, int groupSize, boolean v2) {
        String at = source + ": ";
        long[] qwShape = shape2(st, source, prefix + QWEIGHT, DType.I32);
        if (qwShape[0] * 32 % bits != 0 || qwShape[0] == 0 || qwShape[1] == 0) {
            throw new MalformedTensorFileException(at + "tensor '" + prefix + QWEIGHT + "': shape "
                    + Arrays.toString(qwShape) + " is not [in * " + bits + " / 32, out] for any in");
        }
        long inL = qwShape[0] * 32 / bits;
        long outL = qwShape[1];
        if (inL > Integer.MAX_VALUE || outL > Integer.MAX_VALUE || inL * outL > Integer.MAX_VALUE - 8) {
            throw new MalformedTensorFileException(
                    at + "tensor '" + prefix + QWEIGHT + "': shape " + Arrays.toString(qwShape) + " is too large");
        }
        int in = (int) inL;
        int out = (int) outL;
        int groups;
        if (groupSize == -1) {
            groups = 1;
        } else {
            if (in % groupSize != 0) {
                throw new MalformedTensorFileException(at + "tensor '" + prefix + QWEIGHT + "': " + in
                        + " input features are not a multiple of group_size " + groupSize);
            }
            groups = in / groupSize;
        }
        if ((long) out * bits % 32 != 0) {
            throw new MalformedTensorFileException(at + "tensor '" + prefix + QWEIGHT + "': " + out
                    + " output channels at " + bits + " bits do not fill whole qzeros words");
        }
        long[] qzShape = shape2(st, source, prefix + QZEROS, DType.I32);
        expectShape(at, prefix + QZEROS, qzShape, groups, (long) out * bits / 32);
        Map<String, SafeTensors.Entry> entries = st.entries();
        SafeTensors.Entry scalesEntry = entries.get(prefix + SCALES);
        if (scalesEntry == null) {
            throw new MalformedTensorFileException(
                    at + "missing tensor '" + prefix + SCALES + "' for '" + prefix + QWEIGHT + "'");
        }
        if (scalesEntry.shape().length != 2) {
            throw new MalformedTensorFileException(at + "tensor '" + prefix + SCALES + "': shape "
                    + Arrays.toString(scalesEntry.shape()) + ", expected [" + groups + ", " + out + "]");
        }
        expectShape(at, prefix + SCALES, scalesEntry.shape(), groups, out);
        float[] scalesGo = floats(st, source, scalesEntry);
        int[] qweight = ints(st.readBytes(prefix + QWEIGHT));
        int[] qzeros = ints(st.readBytes(prefix + QZEROS));
        int[] gIdx = null;
        if (entries.containsKey(prefix + G_IDX)) {
            SafeTensors.Entry e = entries.get(prefix + G_IDX);
            if (e.dtype() != DType.I32 || e.shape().length != 1 || e.shape()[0] != in) {
                throw new MalformedTensorFileException(at + "tensor '" + prefix + G_IDX + "': " + e.dtype() + " "
                        + Arrays.toString(e.shape()) + ", expected I32 [" + in + "]");
            }
            gIdx = ints(st.readBytes(prefix + G_IDX));
            for (int i = 0; i < in; i++) {
                if (gIdx[i] < 0 || gIdx[i] >= groups) {
                    throw new MalformedTensorFileException(at + "tensor '" + prefix + G_IDX + "': g_idx[" + i + "] is "
                            + gIdx[i] + ", outside [0, " + groups + ")");
                }
            }
        }
        int maxq = (1 << bits) - 1;
        int zeroWords = out * bits / 32;
        float[] scales = new float[out * groups];
        byte[] zeros = new byte[out * groups];
        boolean symmetric = true;
        for (int g = 0; g < groups; g++) {
            for (int o = 0; o < out; o++) {
                float s = scalesGo[g * out + o];
                if (!(s > 0) || Float.isInfinite(s)) {
                    throw new MalformedTensorFileException(at + "tensor '" + prefix + SCALES + "': scale [" + g + ", "
                            + o + "] is " + s + ", must be positive and finite");
                }
                int z = get(qzeros, 1, g * zeroWords, (long) o * bits, bits) + (v2 ? 0 : 1);
                if (z > maxq) {
                    throw new MalformedTensorFileException(at + "tensor '" + prefix + QZEROS + "': zero-point of ["
                            + g + ", " + o + "] is " + z + " (stored " + (z - 1) + " + 1), above " + maxq + " at "
                            + bits + " bits: an asymmetric group whose zero-point 0 underflowed in AutoGPTQ's v1"
                            + " packing, which no runtime reads back correctly");
                }
                scales[o * groups + g] = s;
                zeros[o * groups + g] = (byte) z;
                symmetric &= z == 1 << (bits - 1);
            }
        }
        int rowBytes = (in * bits + 7) / 8;
        byte[] packed = new byte[out * rowBytes];
        int words = in * bits / 32;
        for (int o = 0; o < out; o++) {
            for (int i = 0; i < in; i++) {
                int code = get(qweight, out, o, (long) i * bits, bits);
                long bit = (long) i * bits;
                int b = o * rowBytes + (int) (bit >>> 3);
                int shift = (int) (bit & 7);
                packed[b] |= (byte) (code << shift);
                if (shift + bits > 8) {
                    packed[b + 1] |= (byte) (code >>> (8 - shift));
                }
            }
        }
        assert words * 32 == in * bits;
        LinearScheme scheme = new LinearScheme(
                bits, symmetric ? Symmetry.SYM : Symmetry.ASYM, groupSize == -1 ? LinearScheme.PER_CHANNEL : groupSize);
        String name = prefix + WEIGHT;
        if (groups == 1) {
            gIdx = null; // per channel: every entry is 0 (checked above), the natural order
        }
        try {
            return new QuantizedTensor(
                    name, scheme, out, in, PackOrder.LSB_FIRST_ROW_ALIGNED, packed, scales, zeros, gIdx);
        } catch (IllegalArgumentException e) {
            throw new MalformedTensorFileException(at + e.getMessage(), e);
        }
    }

    private static long[] shape2(SafeTensors st, String source, String name, DType dtype) {
        SafeTensors.Entry e = st.entries().get(name);
        if (e == null) {
            throw new MalformedTensorFileException(source + ": missing tensor '" + name + "'");
        }
        if (e.dtype() != dtype || e.shape().length != 2) {
            throw new MalformedTensorFileException(source + ": tensor '" + name + "' is " + e.dtype() + " "
                    + Arrays.toString(e.shape()) + ", expected a 2-D " + dtype + " tensor");
        }
        return e.shape();
    }

    private static void expectShape(String at, String name, long[] shape, long rows, long cols) {
        if (shape[0] != rows || shape[1] != cols) {
            throw new MalformedTensorFileException(at + "tensor '" + name + "': shape " + Arrays.toString(shape)
                    + ", expected [" + rows + ", " + cols + "]");
        }
    }

    private static float[] floats(SafeTensors st, String source, SafeTensors.Entry e) {
        byte[] bytes = st.readBytes(e.name());
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int n = (int) e.elements();
        float[] v = new float[n];
        switch (e.dtype()) {
            case F16 -> {
                for (int i = 0; i < n; i++) {
                    v[i] = HalfFloats.fp16ToFloat(b.getShort());
                }
            }
            case BF16 -> {
                for (int i = 0; i < n; i++) {
                    v[i] = HalfFloats.bf16ToFloat(b.getShort());
                }
            }
            case F32 -> b.asFloatBuffer().get(v);
            default ->
                throw new MalformedTensorFileException(
                        source + ": tensor '" + e.name() + "' is " + e.dtype() + ", expected F16 (or BF16, F32)");
        }
        return v;
    }

    private static int[] ints(byte[] bytes) {
        int[] v = new int[bytes.length / 4];
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asIntBuffer().get(v);
        return v;
    }
}
