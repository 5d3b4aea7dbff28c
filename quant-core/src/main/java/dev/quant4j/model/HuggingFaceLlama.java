package dev.quant4j.model;

import dev.quant4j.internal.Json;
import dev.quant4j.io.MalformedTensorFileException;
import dev.quant4j.io.ModelFolder;
import dev.quant4j.io.SafeTensors;
import dev.quant4j.io.SafeTensorsCheckpoint;
import dev.quant4j.tensor.FloatMatrix;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ForkJoinPool;

/**
 * A Hugging Face model folder of the Llama family ({@code LlamaForCausalLM}, {@code MistralForCausalLM}, {@code
 * Qwen2ForCausalLM}): {@code config.json} and the weights in {@code model.safetensors} or in shards listed by {@code
 * model.safetensors.index.json}, F32, F16 or BF16 (converted to float32 on reading). {@link #read} reads every tensor
 * into memory (a model must fit the heap in float32); {@link #open} reads one block at a time.
 *
 * <p>The configuration keys and their defaults are transformers' ({@code LlamaConfig}): {@code hidden_size}, {@code
 * intermediate_size}, {@code num_hidden_layers}, {@code num_attention_heads}, {@code num_key_value_heads} (default:
 * the head count), {@code head_dim} (default: {@code hidden_size / num_attention_heads}), {@code vocab_size}, {@code
 * max_position_embeddings}, {@code rope_theta} (10000), {@code rms_norm_eps} (1e-6), {@code tie_word_embeddings}
 * (false; true for Qwen2's small models, which say so), {@code hidden_act} (must be {@code silu}). A {@code
 * rope_scaling} other than null is refused, as is any other architecture: each named in the message.
 */
public final class HuggingFaceLlama {

    /** The architectures read, as {@code config.json} names them. */
    public static final Set<String> ARCHITECTURES =
            Set.of("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM");

    static final String CONFIG = "config.json";
    static final String INDEX = "model.safetensors.index.json";
    static final String SINGLE = "model.safetensors";

    private HuggingFaceLlama() {}

    /** The decoder in folder {@code dir}, its linears run on {@code pool}. */
    public static LlamaDecoder read(Path dir, ForkJoinPool pool) throws IOException {
        String source =
                dir.getFileName() == null ? dir.toString() : dir.getFileName().toString();
        return read(ModelFolder.of(dir), source, pool);
    }

    /**
     * The decoder in a folder on disk or in memory ({@link ModelFolder#of(Map, String)}), named {@code
     * folder.name()} in messages.
     */
    public static LlamaDecoder read(ModelFolder folder, ForkJoinPool pool) throws IOException {
        return read(folder, folder.name(), pool);
    }

    private static LlamaDecoder read(ModelFolder folder, String source, ForkJoinPool pool) throws IOException {
        if (!folder.has(CONFIG)) {
            throw new MalformedTensorFileException(source + ": no config.json (not a Hugging Face model folder)");
        }
        LlamaConfig config = config(source + "/" + CONFIG, folder.readString(CONFIG));
        return LlamaDecoder.of(source, config, tensors(folder, source), pool);
    }

    /**
     * Opens the folder {@code dir} for reading block by block: {@code config.json} is parsed and every shard's header
     * checked against the index now; tensors are read (and converted to float32) only when a block or a tensor is
     * asked for, so a model of any size can be quantized with one block in memory.
     */
    public static Checkpoint open(Path dir, ForkJoinPool pool) throws IOException {
        String source =
                dir.getFileName() == null ? dir.toString() : dir.getFileName().toString();
        ModelFolder folder = ModelFolder.of(dir);
        if (!folder.has(CONFIG)) {
            throw new MalformedTensorFileException(source + ": no config.json (not a Hugging Face model folder)");
        }
        LlamaConfig config = config(source + "/" + CONFIG, folder.readString(CONFIG));
        if (!folder.has(INDEX) && !folder.has(SINGLE)) {
            throw new MalformedTensorFileException(source + ": neither " + SINGLE + " nor " + INDEX);
        }
        return new Checkpoint(source, config, SafeTensorsCheckpoint.open(dir), pool);
    }

    /** A Hugging Face Llama-family folder read block by block ({@link #open}). */
    public static final class Checkpoint implements DecoderBlocks, AutoCloseable {

        private final String source;
        private final LlamaConfig config;
        private final SafeTensorsCheckpoint files;
        private final Map<String, SafeTensors> where = new LinkedHashMap<>();
        private final ForkJoinPool pool;

        private Checkpoint(String source, LlamaConfig config, SafeTensorsCheckpoint files, ForkJoinPool pool) {
            this.source = source;
            this.config = config;
            this.files = files;
            this.pool = Objects.requireNonNull(pool, "pool");
            for (SafeTensorsCheckpoint.Shard shard : files.shards()) {
                for (String name : shard.file().names()) {
                    if (readable(shard.file().entry(name))) {
                        where.put(name, shard.file());
                    }
                }
            }
        }

        @Override
        public String source() {
            return source;
        }

        @Override
        public LlamaConfig config() {
            return config;
        }

        /** The names of the float tensors, in the order {@link HuggingFaceLlama#tensors(Path, String)} lists them. */
        public List<String> tensorNames() {
            return List.copyOf(where.keySet());
        }

        /** The shape of tensor {@code name} as the file stores it. */
        public long[] shape(String name) {
            return file(name).entry(name).shape();
        }

        /** The bytes tensor {@code name} takes in its file. */
        public long bytes(String name) {
            SafeTensors.Entry e = file(name).entry(name);
            return e.end() - e.begin();
        }

        /** Tensor {@code name} as float32: a matrix {@code [rows, cols]}, or a vector as {@code [1, n]}. */
        public FloatMatrix read(String name) {
            return matrix(file(name), name);
        }

        /**
         * Rows {@code [first, first + count)} of the matrix {@code name} as float32 into {@code dst} from {@code off},
         * read from the file now.
         */
        public void readRows(String name, long first, int count, float[] dst, int off) {
            SafeTensors st = file(name);
            long[] shape = st.entry(name).shape();
            if (shape.length != 2 || first < 0 || count < 0 || first + count > shape[0]) {
                throw new IllegalArgumentException(source + ": tensor '" + name + "' "
                        + java.util.Arrays.toString(shape) + " has no rows [" + first + ", " + (first + count) + ")");
            }
            st.readFloats(name, first * shape[1], Math.toIntExact(count * shape[1]), dst, off);
        }

        private SafeTensors file(String name) {
            SafeTensors st = where.get(name);
            if (st == null) {
                throw new IllegalArgumentException(source + ": no tensor '" + name + "'");
            }
            return st;
        }

        /** The embedding rows of {@code tokens}, read from the file row by row. */
        @Override
        public FloatMatrix embed(int[] tokens) {
            String name = LlamaDecoder.EMBED_TOKENS;
            SafeTensors st = file(name);
            int dim = config.dim();
            long[] shape = st.entry(name).shape();
            if (shape.length != 2 || shape[0] != config.vocabSize() || shape[1] != dim) {
                throw new IllegalArgumentException(source + ": tensor '" + name + "' is "
                        + java.util.Arrays.toString(shape) + ", the config needs [" + config.vocabSize() + ", " + dim
                        + "]");
            }
            float[] x = new float[Math.multiplyExact(tokens.length, dim)];
            for (int t = 0; t < tokens.length; t++) {
                int id = tokens[t];
                if (id < 0 || id >= config.vocabSize()) {
                    throw new IllegalArgumentException(
                            source + ": token " + t + " has id " + id + ", the vocabulary has " + config.vocabSize());
                }
                st.readFloats(name, (long) id * dim, dim, x, t * dim);
            }
            return FloatMatrix.of("embeddings", tokens.length, dim, x, 0);
        }

        /** A decoder holding block {@code index} alone ({@link LlamaDecoder#window}), read from the files now. */
        @Override
        public LlamaDecoder block(int index) {
            if (index < 0 || index >= config.layers()) {
                throw new IllegalArgumentException(
                        source + ": no block " + index + " (the model has " + config.layers() + ")");
            }
            String prefix = "model.layers." + index + ".";
            Map<String, FloatMatrix> tensors = new LinkedHashMap<>();
            for (String name : where.keySet()) {
                if (name.startsWith(prefix)) {
                    tensors.put(name, read(name));
                }
            }
            return LlamaDecoder.window(source, config, tensors, index, index + 1, pool);
        }

        @Override
        public void close() {
            files.close();
        }
    }

    /** Whether a tensor is one the decoder may read: float, of two dimensions, or of one with values. */
    private static boolean readable(SafeTensors.Entry e) {
        long[] shape = e.shape();
        return e.dtype().isFloat() && (shape.length == 2 || (shape.length == 1 && shape[0] > 0));
    }

    /** Tensor {@code name} of {@code st} as float32: a matrix {@code [rows, cols]}, or a vector as {@code [1, n]}. */
    private static FloatMatrix matrix(SafeTensors st, String name) {
        long[] shape = st.entry(name).shape();
        float[] values = st.readFloats(name);
        return shape.length == 2
                ? FloatMatrix.of(name, (int) shape[0], (int) shape[1], values, 0)
                : FloatMatrix.of(name, 1, values.length, values, 0);
    }

    /** The decoder configuration in {@code config.json}'s text; {@code source} names it in messages. */
    public static LlamaConfig config(String source, String json) {
        Object parsed;
        try {
            parsed = Json.parse(json);
        } catch (IllegalArgumentException e) {
            throw new MalformedTensorFileException(source + ": " + e.getMessage());
        }
        if (!(parsed instanceof Map<?, ?> m)) {
            throw new MalformedTensorFileException(source + ": not a JSON object");
        }
        Object arch = m.get("architectures");
        if (!(arch instanceof List<?> list)
                || list.size() != 1
                || !(list.get(0) instanceof String name)
                || !ARCHITECTURES.contains(name)) {
            throw new IllegalArgumentException(source + ": architectures " + Json.write(arch)
                    + " is not supported; quant4j's decoder runs " + new TreeSet<>(ARCHITECTURES));
        }
        Object act = m.get("hidden_act");
        if (act != null && !"silu".equals(act)) {
            throw new IllegalArgumentException(source + ": hidden_act '" + act + "' is not supported (only silu)");
        }
        if (m.get("rope_scaling") != null) {
            throw new IllegalArgumentException(
                    source + ": rope_scaling " + Json.write(m.get("rope_scaling")) + " is not supported");
        }
        int dim = integer(source, m, "hidden_size", null);
        int heads = integer(source, m, "num_attention_heads", null);
        Object tie = m.get("tie_word_embeddings");
        if (tie != null && !(tie instanceof Boolean)) {
            throw new IllegalArgumentException(source + ": tie_word_embeddings must be true or false, got " + tie);
        }
        if (m.get("head_dim") == null && dim % heads != 0) {
            throw new IllegalArgumentException(source + ": num_attention_heads " + heads
                    + " does not divide hidden_size " + dim + " and there is no head_dim");
        }
        try {
            return new LlamaConfig(
                    dim,
                    integer(source, m, "intermediate_size", null),
                    integer(source, m, "num_hidden_layers", null),
                    heads,
                    integer(source, m, "num_key_value_heads", heads),
                    integer(source, m, "head_dim", dim / heads),
                    integer(source, m, "vocab_size", null),
                    integer(source, m, "max_position_embeddings", null),
                    number(source, m, "rope_theta", 10000),
                    number(source, m, "rms_norm_eps", 1e-6),
                    RopeLayout.HALF_SPLIT,
                    Boolean.TRUE.equals(tie));
        } catch (IllegalArgumentException e) {
            if (e.getMessage().startsWith(source)) {
                throw e;
            }
            throw new IllegalArgumentException(source + ": " + e.getMessage(), e);
        }
    }

    private static int integer(String source, Map<?, ?> m, String key, Integer fallback) {
        Object v = m.get(key);
        if (v == null) {
            if (fallback == null) {
                throw new IllegalArgumentException(source + ": no key '" + key + "'");
            }
            return fallback;
        }
        if (!(v instanceof Long l) || l < 1 || l > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(source + ": '" + key + "' is " + v + ", expected a positive integer");
        }
        return (int) (long) l;
    }

    private static double number(String source, Map<?, ?> m, String key, double fallback) {
        Object v = m.get(key);
        if (v == null) {
            return fallback;
        }
        if (!(v instanceof Number n)) {
            throw new IllegalArgumentException(source + ": '" + key + "' is " + v + ", expected a number");
        }
        return n.doubleValue();
    }

    /**
     * Every tensor of the folder as float32, under its name: matrices {@code [rows, cols]}, vectors {@code [1, n]}.
     * With an index, every shard it names is read and each tensor must be in the shard the index says, once. {@code
     * source} names the folder in messages.
     */
    public static Map<String, FloatMatrix> tensors(Path dir, String source) throws IOException {
        return tensors(ModelFolder.of(dir), source);
    }

    /** As {@link #tensors(Path, String)}, for a folder on disk or in memory. */
    static Map<String, FloatMatrix> tensors(ModelFolder folder, String source) throws IOException {
        Map<String, String> shardOf = new TreeMap<>();
        if (folder.has(INDEX)) {
            shardOf = SafeTensorsCheckpoint.weightMap(source + "/" + INDEX, folder.readString(INDEX));
        } else if (!folder.has(SINGLE)) {
            throw new MalformedTensorFileException(source + ": neither " + SINGLE + " nor " + INDEX);
        }
        Map<String, FloatMatrix> out = new LinkedHashMap<>();
        Set<String> seen = new TreeSet<>();
        Set<String> files = shardOf.isEmpty() ? Set.of(SINGLE) : new TreeSet<>(shardOf.values());
        for (String file : files) {
            if (!folder.has(file)) {
                throw new MalformedTensorFileException(source + ": shard '" + file + "' named by the index is missing");
            }
            try (SafeTensors st = folder.openSafeTensors(file)) {
                for (String name : st.names()) {
                    if (!shardOf.isEmpty() && !file.equals(shardOf.get(name))) {
                        throw new MalformedTensorFileException(source + ": tensor '" + name + "' is in '" + file
                                + "', the index says " + Json.write(shardOf.get(name)));
                    }
                    if (!seen.add(name)) {
                        throw new MalformedTensorFileException(source + ": tensor '" + name + "' is in two shards");
                    }
                    if (readable(st.entry(name))) { // not, e.g., stored position ids
                        out.put(name, matrix(st, name));
                    }
                }
            }
        }
        for (String name : shardOf.keySet()) {
            if (!seen.contains(name)) {
                throw new MalformedTensorFileException(
                        source + ": tensor '" + name + "' is in the index but not in '" + shardOf.get(name) + "'");
            }
        }
        return out;
    }
}
