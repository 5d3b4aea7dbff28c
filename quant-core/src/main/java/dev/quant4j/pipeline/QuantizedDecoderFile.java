package dev.quant4j.pipeline;

import dev.quant4j.internal.Json;
import dev.quant4j.io.DType;
import dev.quant4j.io.Llama2cCheckpoint;
import dev.quant4j.io.MalformedTensorFileException;
import dev.quant4j.io.QuantizedSafeTensors;
import dev.quant4j.io.QuantizedSafeTensors.PassThrough;
import dev.quant4j.io.SafeTensors;
import dev.quant4j.io.SafeTensorsSpillWriter;
import dev.quant4j.io.SafeTensorsStreamWriter;
import dev.quant4j.io.SafeTensorsWriter;
import dev.quant4j.matmul.QuantizedLinear;
import dev.quant4j.model.HuggingFaceLlama;
import dev.quant4j.model.Linear;
import dev.quant4j.model.LlamaConfig;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.model.RopeLayout;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.tensor.FloatMatrix;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ForkJoinPool;
import java.util.zip.CRC32C;

/**
 * A whole quantized decoder in one quant4j {@code .safetensors} file ({@link QuantizedSafeTensors}): every quantized
 * linear under its Hugging Face name, every other tensor of the source (embeddings, norms, the output head, biases,
 * llama2.c's rotary tables) as F32 under its name, and the hyperparameters in {@code __metadata__["quant4j.decoder"]}
 * as a JSON object with {@code config.json}'s keys ({@code hidden_size, intermediate_size, num_hidden_layers,
 * num_attention_heads, num_key_value_heads, head_dim, vocab_size, max_position_embeddings, rope_theta, rms_norm_eps,
 * tie_word_embeddings}) plus {@code rope_layout} ({@code interleaved} or {@code half_split}) and {@code source_format}
 * ({@code llama2c} or {@code huggingface}: what the model was read from, so that it can be written back so).
 *
 * <p>The file is all it takes to run the model again: {@link Loaded#model} builds the decoder whose linears are the
 * quantized weights, the same products as {@link DecoderQuantizer.Result#model()}.
 */
public final class QuantizedDecoderFile {

    /** The metadata key of the hyperparameters. */
    public static final String CONFIG_KEY = "quant4j.decoder";

    /** What a decoder was read from. */
    public enum SourceFormat {
        /** A llama2.c checkpoint, {@code .bin}. */
        LLAMA2C("llama2c"),
        /** A Hugging Face model folder. */
        HUGGING_FACE("huggingface");

        private final String id;

        SourceFormat(String id) {
            this.id = id;
        }

        /** The name in the metadata. */
        public String id() {
            return id;
        }
    }

    /**
     * A decoder's configuration and every float tensor of its files in float32 under Hugging Face's names (a llama2.c
     * checkpoint's rotary tables under {@link #FREQS_COS} and {@link #FREQS_SIN}).
     *
     * @param name the model's name in messages (its file or folder)
     */
    public record Source(String name, SourceFormat format, LlamaConfig config, Map<String, FloatMatrix> tensors) {
        public Source {
            tensors = Collections.unmodifiableMap(new LinkedHashMap<>(tensors));
        }

        /** The FP32 decoder over these tensors. */
        public LlamaDecoder decoder(ForkJoinPool pool) {
            return LlamaDecoder.of(name, config, tensors, pool);
        }

        /**
         * These tensors with {@code replaced} in place of those of the same names (AWQ's folded weights, for example).
         *
         * @throws IllegalArgumentException for a name this source does not have, or another shape
         */
        public Source with(Map<String, FloatMatrix> replaced) {
            Map<String, FloatMatrix> t = new LinkedHashMap<>(tensors);
            for (Map.Entry<String, FloatMatrix> e : replaced.entrySet()) {
                FloatMatrix old = t.get(e.getKey());
                FloatMatrix now = e.getValue();
                if (old == null || old.rows() != now.rows() || old.cols() != now.cols()) {
                    throw new IllegalArgumentException(name + ": tensor '" + e.getKey() + "' "
                            + (old == null ? "is not in the model" : "is [" + old.rows() + ", " + old.cols() + "]")
                            + ", its replacement [" + now.rows() + ", " + now.cols() + "]");
                }
                t.put(e.getKey(), now);
            }
            return new Source(name, format, config, t);
        }
    }

    /** The names a llama2.c checkpoint's two rotary tables pass through under. */
    public static final String FREQS_COS = "freqs_cos";

    public static final String FREQS_SIN = "freqs_sin";

    private QuantizedDecoderFile() {}

    /**
     * Reads a llama2.c checkpoint ({@code .bin}) or a Hugging Face model folder ({@link HuggingFaceLlama}).
     *
     * @throws IllegalArgumentException for any other path, naming it
     */
    public static Source readSource(Path path) throws IOException {
        String name = path.getFileName() == null
                ? path.toString()
                : path.getFileName().toString();
        if (Files.isDirectory(path)) {
            Path configFile = path.resolve("config.json");
            if (!Files.isRegularFile(configFile)) {
                throw new MalformedTensorFileException(name + ": no config.json (not a Hugging Face model folder)");
            }
            LlamaConfig config = HuggingFaceLlama.config(
                    name + "/config.json", Files.readString(configFile, StandardCharsets.UTF_8));
            return new Source(name, SourceFormat.HUGGING_FACE, config, HuggingFaceLlama.tensors(path, name));
        }
        if (!name.endsWith(".bin")) {
            throw new IllegalArgumentException(
                    path + ": expected a llama2.c checkpoint (.bin) or a Hugging Face model folder");
        }
        Llama2cCheckpoint c = Llama2cCheckpoint.read(path);
        Map<String, FloatMatrix> tensors = new LinkedHashMap<>(c.tensors());
        tensors.put(FREQS_COS, c.freqsCos().named(FREQS_COS));
        tensors.put(FREQS_SIN, c.freqsSin().named(FREQS_SIN));
        return new Source(name, SourceFormat.LLAMA2C, LlamaDecoder.llama2cConfig(c.header()), tensors);
    }

    /**
     * Writes {@code quantized} (made from {@code source} by {@code method}, e.g. {@code "gptq"}) atomically to {@code
     * path}: the quantized weights, then every tensor of {@code source} that was not quantized (a {@code [1, n]}
     * tensor as 1-D {@code [n]}), as the quantization left it ({@link DecoderQuantizer.Result#tensors()}: AWQ's
     * folded norms), then the configuration.
     */
    public static void write(Path path, Source source, DecoderQuantizer.Result quantized, String method)
            throws IOException {
        List<PassThrough> other = new ArrayList<>();
        for (FloatMatrix m : source.tensors().values()) {
            if (!quantized.weights().containsKey(m.name())) {
                other.add(f32(quantized.tensors().getOrDefault(m.name(), m)));
            }
        }
        QuantizedSafeTensors.write(
                path,
                List.copyOf(quantized.weights().values()),
                method,
                other,
                Map.of(CONFIG_KEY, configJson(source.config(), source.format())));
    }

    /**
     * Quantizes the Hugging Face folder {@code source} block by block with {@code quantizer} ({@link
     * DecoderQuantizer#quantize(dev.quant4j.model.DecoderBlocks, List, DecoderQuantizer.BlockSink)}) and writes the
     * result atomically to {@code path}, the same bytes {@link #write} writes for the whole decoder: each block's
     * quantized weights are written as the block is done, then every other tensor of the folder, read one at a time.
     * The heap holds one block's FP32 weights, the calibration activations, and the largest pass-through tensor.
     *
     * @param observer given each block's weights and reports once they are written (may be null)
     * @return the layer reports, in forward order
     */
    public static List<DecoderQuantizer.LayerReport> writeStreamed(
            Path path,
            HuggingFaceLlama.Checkpoint source,
            DecoderQuantizer quantizer,
            List<int[]> calibration,
            String method,
            DecoderQuantizer.BlockSink observer)
            throws IOException {
        List<DecoderQuantizer.LayerReport> reports = new ArrayList<>();
        Set<String> quantized = new HashSet<>();
        try (SafeTensorsSpillWriter out = SafeTensorsSpillWriter.create(path)) {
            out.metadata(QuantizedSafeTensors.FORMAT_KEY, QuantizedSafeTensors.FORMAT_VERSION);
            quantizer.quantize(source, calibration, (b, weights, layers) -> {
                for (QuantizedWeight q : weights.values()) {
                    spill(out, q, method, null, null, null);
                    quantized.add(q.name());
                }
                reports.addAll(layers);
                if (observer != null) {
                    observer.accept(b, weights, layers);
                }
            });
            finishStreamed(out, source, quantized);
        }
        return reports;
    }

    /**
     * As {@link #writeStreamed(Path, HuggingFaceLlama.Checkpoint, DecoderQuantizer, List, String,
     * DecoderQuantizer.BlockSink)} for GPTQ, saving after each block what a stopped run needs to continue in {@code
     * resume} ({@link ResumeFolder}): when {@code resume} holds a state, the run continues after its last finished
     * block (handing each finished block's weights, read back, and reports to {@code observer} first) and writes the
     * bytes an uninterrupted run writes. The folder is deleted once the file is written; when the run stops it stays
     * (unless no block was finished).
     *
     * @throws IllegalArgumentException when the saved state is another run's ({@link ResumeFolder#mismatch}), naming
     *     what differs; nothing is touched then
     * @throws IllegalStateException unless {@code quantizer} runs GPTQ
     */
    public static List<DecoderQuantizer.LayerReport> writeStreamed(
            Path path,
            HuggingFaceLlama.Checkpoint source,
            DecoderQuantizer quantizer,
            List<int[]> calibration,
            String method,
            DecoderQuantizer.BlockSink observer,
            ResumeFolder resume)
            throws IOException {
        if (quantizer.setting().method() != DecoderQuantizer.Method.GPTQ) {
            throw new IllegalStateException("a run saves its state for GPTQ only, not "
                    + quantizer.setting().label());
        }
        ResumeFolder.Lock lock = resume.lock();
        try {
            return writeLocked(path, source, quantizer, calibration, method, observer, resume);
        } finally {
            lock.close();
        }
    }

    /** The resumable {@code writeStreamed} with {@code resume} locked by this run. */
    private static List<DecoderQuantizer.LayerReport> writeLocked(
            Path path,
            HuggingFaceLlama.Checkpoint source,
            DecoderQuantizer quantizer,
            List<int[]> calibration,
            String method,
            DecoderQuantizer.BlockSink observer,
            ResumeFolder resume)
            throws IOException {
        int layers = source.config().layers();
        Optional<ResumeFolder.State> saved = resume.read();
        if (saved.isPresent()) {
            String why = resume.mismatch(saved.get(), layers);
            if (why != null) {
                throw new IllegalArgumentException(resume.dir() + " holds the state of a run on " + why);
            }
        }
        List<ResumeFolder.Block> done =
                new ArrayList<>(saved.map(ResumeFolder.State::blocks).orElse(List.of()));
        List<SafeTensorsStreamWriter.Spec> spilled = new ArrayList<>();
        for (ResumeFolder.Block b : done) {
            spilled.addAll(b.tensors());
        }
        List<DecoderQuantizer.LayerReport> reports = new ArrayList<>();
        Set<String> quantized = new HashSet<>();
        boolean written = false;
        try (SafeTensorsSpillWriter out = SafeTensorsSpillWriter.open(path, resume.spill(), spilled)) {
            out.metadata(QuantizedSafeTensors.FORMAT_KEY, QuantizedSafeTensors.FORMAT_VERSION);
            long at = 0;
            for (int b = 0; b < done.size(); b++) {
                ResumeFolder.Block block = done.get(b);
                Map<String, QuantizedWeight> weights = restore(out, at, b, block, resume);
                at += block.bytes();
                quantized.addAll(weights.keySet());
                reports.addAll(block.reports());
                if (observer != null) {
                    observer.accept(b, weights, block.reports());
                }
            }
            if (done.size() < layers) {
                DecoderGptq.Start start = saved.isPresent()
                        ? new DecoderGptq.Start(
                                done.size(),
                                resume.readInputs(
                                        saved.get(),
                                        calibration,
                                        source.config().dim()))
                        : DecoderGptq.start(source, calibration);
                List<Finished> pending = new ArrayList<>(1);
                quantizer.gptq(
                        source,
                        start,
                        (b, weights, layerReports) -> {
                            List<SafeTensorsStreamWriter.Spec> specs = new ArrayList<>();
                            Map<String, String> metadata = new LinkedHashMap<>();
                            CRC32C crc = new CRC32C();
                            for (QuantizedWeight q : weights.values()) {
                                spill(out, q, method, specs, metadata, crc);
                                quantized.add(q.name());
                            }
                            pending.clear();
                            pending.add(new Finished(
                                    new ResumeFolder.Block(specs, metadata, crc.getValue(), layerReports), weights));
                        },
                        (b, next) -> {
                            ResumeFolder.Block block = pending.get(0).block();
                            Map<String, QuantizedWeight> weights =
                                    pending.get(0).weights();
                            out.force();
                            done.add(block);
                            ResumeFolder.Saved inputs = b + 1 < layers ? resume.saveInputs(b + 1, next) : null;
                            resume.save(new ResumeFolder.State(
                                    resume.identity(),
                                    layers,
                                    done,
                                    inputs == null ? null : inputs.file(),
                                    inputs == null ? 0 : inputs.bytes(),
                                    inputs == null ? 0 : inputs.crc32c()));
                            resume.deleteInputsBut(inputs == null ? null : inputs.file());
                            reports.addAll(block.reports());
                            if (observer != null) {
                                observer.accept(b, weights, block.reports());
                            }
                        });
            }
            finishStreamed(out, source, quantized);
            written = true;
        } finally {
            if (!written && done.isEmpty()) {
                resume.delete(); // nothing to continue
            }
        }
        resume.delete();
        return reports;
    }

    /** A block whose tensors are in the spill, before its state is saved. */
    private record Finished(ResumeFolder.Block block, Map<String, QuantizedWeight> weights) {}

    /**
     * Appends the tensors of {@code q} to {@code out} with its metadata entry; the specs, the entry and the bytes
     * also go to {@code specs}, {@code metadata} and {@code crc} when given.
     */
    private static void spill(
            SafeTensorsSpillWriter out,
            QuantizedWeight q,
            String method,
            List<SafeTensorsStreamWriter.Spec> specs,
            Map<String, String> metadata,
            CRC32C crc)
            throws IOException {
        QuantizedSafeTensors.Layout layout = QuantizedSafeTensors.layout(q, method, false);
        out.metadata(layout.metadataKey(), layout.metadataJson());
        Map<String, byte[]> parts = QuantizedSafeTensors.parts(q);
        for (SafeTensorsStreamWriter.Spec spec : layout.tensors()) {
            byte[] bytes = parts.get(spec.name());
            out.add(spec.name(), spec.dtype(), spec.shape(), bytes);
            if (specs != null) {
                specs.add(spec);
                crc.update(bytes);
            }
        }
        if (metadata != null) {
            metadata.put(layout.metadataKey(), layout.metadataJson());
        }
    }

    /**
     * The weights of finished block {@code b}, read back from the spill where they start at {@code at}, checked against
     * their CRC-32C; their metadata entries are added to {@code out} again.
     */
    private static Map<String, QuantizedWeight> restore(
            SafeTensorsSpillWriter out, long at, int b, ResumeFolder.Block block, ResumeFolder resume)
            throws IOException {
        SafeTensorsWriter w = new SafeTensorsWriter();
        w.metadata(QuantizedSafeTensors.FORMAT_KEY, QuantizedSafeTensors.FORMAT_VERSION);
        for (Map.Entry<String, String> e : block.metadata().entrySet()) {
            out.metadata(e.getKey(), e.getValue());
            w.metadata(e.getKey(), e.getValue());
        }
        CRC32C crc = new CRC32C();
        long position = at;
        for (SafeTensorsStreamWriter.Spec s : block.tensors()) {
            byte[] bytes = out.read(position, Math.toIntExact(s.bytes()));
            crc.update(bytes);
            w.add(s.name(), s.dtype(), s.shape(), bytes);
            position += s.bytes();
        }
        if (crc.getValue() != block.crc32c()) {
            throw new MalformedTensorFileException(resume.spill() + ": block " + b + "'s tensors do not match the"
                    + " CRC-32C saved in " + ResumeFolder.STATE + " (the file was changed or damaged); delete "
                    + resume.dir() + " to start over");
        }
        String source = resume.spill() + " (block " + b + ")";
        return QuantizedSafeTensors.parse(w.toBytes(), source).weights();
    }

    /** Every tensor of {@code source} not {@code quantized} as F32, the configuration, then the file. */
    private static void finishStreamed(
            SafeTensorsSpillWriter out, HuggingFaceLlama.Checkpoint source, Set<String> quantized) throws IOException {
        for (String name : source.tensorNames()) {
            if (!quantized.contains(name)) {
                PassThrough p = f32(source.read(name));
                out.add(p.name(), p.dtype(), p.shape(), p.bytes());
            }
        }
        out.metadata(CONFIG_KEY, configJson(source.config(), SourceFormat.HUGGING_FACE));
        out.finish();
    }

    /** {@code m} as an F32 tensor under its name, 1-D {@code [n]} when it is {@code [1, n]}. */
    public static PassThrough f32(FloatMatrix m) {
        long[] shape = m.rows() == 1 ? new long[] {m.cols()} : new long[] {m.rows(), m.cols()};
        ByteBuffer b = ByteBuffer.allocate(Float.BYTES * m.rows() * m.cols()).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(m.toArray());
        return new PassThrough(m.name(), DType.F32, shape, b.array());
    }

    /** The metadata value for a configuration. */
    static String configJson(LlamaConfig c, SourceFormat format) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("source_format", format.id());
        m.put("hidden_size", (long) c.dim());
        m.put("intermediate_size", (long) c.hiddenDim());
        m.put("num_hidden_layers", (long) c.layers());
        m.put("num_attention_heads", (long) c.heads());
        m.put("num_key_value_heads", (long) c.kvHeads());
        m.put("head_dim", (long) c.headDim());
        m.put("vocab_size", (long) c.vocabSize());
        m.put("max_position_embeddings", (long) c.maxSeqLen());
        m.put("rope_theta", c.ropeTheta());
        m.put("rms_norm_eps", c.normEps());
        m.put("rope_layout", c.rope().name().toLowerCase(Locale.ROOT));
        m.put("tie_word_embeddings", c.tiedEmbeddings());
        return Json.write(m);
    }

    /**
     * A quantized decoder file read back.
     *
     * @param source the file's name in messages
     */
    public record Loaded(String source, SourceFormat format, LlamaConfig config, QuantizedSafeTensors.Content content) {

        /**
         * Every tensor in float32 under its name: the quantized weights dequantized, the others as stored ({@code
         * [1, n]} for a 1-D tensor).
         */
        public Map<String, FloatMatrix> tensors() {
            Map<String, FloatMatrix> out = new LinkedHashMap<>();
            for (FloatMatrix m : content.dequantizeAll()) {
                out.put(m.name(), m);
            }
            for (PassThrough p : content.other()) {
                if (p.dtype() != DType.F32 || p.shape().length < 1 || p.shape().length > 2) {
                    throw new MalformedTensorFileException(
                            source + ": tensor '" + p.name() + "' is " + p.dtype() + " of " + p.shape().length
                                    + " dimensions; a quantized decoder stores F32 vectors and matrices");
                }
                float[] v = new float[p.bytes().length / Float.BYTES];
                ByteBuffer.wrap(p.bytes())
                        .order(ByteOrder.LITTLE_ENDIAN)
                        .asFloatBuffer()
                        .get(v);
                int rows = p.shape().length == 1 ? 1 : (int) p.shape()[0];
                out.put(p.name(), FloatMatrix.of(p.name(), rows, v.length / Math.max(rows, 1), v, 0));
            }
            return out;
        }

        /**
         * The decoder whose linear layers run on the quantized weights (biases from the file).
         *
         * @throws IllegalArgumentException for a tensor the configuration has no place or shape for, and a quantized
         *     tensor that is not a block's linear weight
         */
        public LlamaDecoder model(ForkJoinPool pool) {
            Map<String, FloatMatrix> tensors = tensors();
            LlamaDecoder dense = LlamaDecoder.of(source, config, tensors, pool);
            Map<String, Linear> linears = new LinkedHashMap<>();
            for (QuantizedWeight q : content.weights().values()) {
                if (!q.name().endsWith(".weight")) {
                    throw new MalformedTensorFileException(source + ": quantized tensor '" + q.name()
                            + "' is not a linear layer's weight (a name ending in .weight)");
                }
                String module = q.name().substring(0, q.name().length() - ".weight".length());
                FloatMatrix bias = tensors.get(module + ".bias");
                linears.put(
                        module,
                        Linear.quantized(module, QuantizedLinear.of(q, bias == null ? null : bias.toArray(), pool)));
            }
            return dense.withLinears(linears);
        }

        /**
         * The llama2.c checkpoint of the dequantized model, named {@code name} in messages: the header from the
         * configuration, the dequantized weights and the other tensors as stored (the rotary tables computed when
         * the file has none).
         *
         * @throws IllegalArgumentException unless the model came from a llama2.c checkpoint (a Hugging Face model's
         *     query and key rows are in another rotary layout, and its norms' epsilon may differ)
         */
        public Llama2cCheckpoint toLlama2c(String name) {
            if (format != SourceFormat.LLAMA2C) {
                throw new IllegalArgumentException(source + " was quantized from a " + format.id()
                        + " model; a llama2.c checkpoint is written only for a model quantized from one (.bin)");
            }
            Llama2cCheckpoint.Header header = new Llama2cCheckpoint.Header(
                    config.dim(),
                    config.hiddenDim(),
                    config.layers(),
                    config.heads(),
                    config.kvHeads(),
                    config.vocabSize(),
                    config.maxSeqLen(),
                    config.tiedEmbeddings());
            Map<String, FloatMatrix> tensors = tensors();
            FloatMatrix[] computed = Llama2cCheckpoint.ropeTables(header);
            FloatMatrix cos = tensors.remove(FREQS_COS);
            FloatMatrix sin = tensors.remove(FREQS_SIN);
            return new Llama2cCheckpoint(
                    name, header, tensors, cos == null ? computed[0] : cos, sin == null ? computed[1] : sin);
        }
    }

    /**
     * Reads a file {@link #write} wrote.
     *
     * @throws MalformedTensorFileException if it is not a quant4j file or has no (valid) decoder configuration
     */
    public static Loaded read(Path path) throws IOException {
        String name = path.getFileName() == null
                ? path.toString()
                : path.getFileName().toString();
        Header header;
        try (SafeTensors st = SafeTensors.open(path)) {
            header = header(name, st.metadata().get(CONFIG_KEY));
        }
        return new Loaded(name, header.format(), header.config(), QuantizedSafeTensors.read(path));
    }

    /**
     * Reads file bytes held in memory, as {@link #read(Path)} reads a file.
     *
     * @param source the file's name in messages
     * @throws MalformedTensorFileException as {@link #read(Path)}, and for bytes that are not safetensors
     */
    public static Loaded read(byte[] bytes, String source) {
        Header header;
        try (SafeTensors st = SafeTensors.parse(bytes, source)) {
            header = header(source, st.metadata().get(CONFIG_KEY));
        }
        return new Loaded(source, header.format(), header.config(), QuantizedSafeTensors.parse(bytes, source));
    }

    /** What {@code __metadata__[CONFIG_KEY]} says. */
    private record Header(SourceFormat format, LlamaConfig config) {}

    /** Parses {@code __metadata__[CONFIG_KEY]}, {@code json} (null when the file has none). */
    private static Header header(String name, String json) {
        if (json == null) {
            throw new MalformedTensorFileException(
                    name + ": no " + CONFIG_KEY + " metadata (not a whole decoder written by quant quantize --model)");
        }
        Object parsed;
        try {
            parsed = Json.parse(json);
        } catch (IllegalArgumentException e) {
            throw new MalformedTensorFileException(name + ": " + CONFIG_KEY + ": " + e.getMessage());
        }
        if (!(parsed instanceof Map<?, ?> m)) {
            throw new MalformedTensorFileException(name + ": " + CONFIG_KEY + " is not a JSON object");
        }
        SourceFormat format = null;
        for (SourceFormat f : SourceFormat.values()) {
            if (f.id().equals(m.get("source_format"))) {
                format = f;
            }
        }
        if (format == null) {
            throw new MalformedTensorFileException(name + ": " + CONFIG_KEY + ": source_format "
                    + Json.write(m.get("source_format")) + ", expected \"llama2c\" or \"huggingface\"");
        }
        RopeLayout rope = null;
        for (RopeLayout r : RopeLayout.values()) {
            if (r.name().toLowerCase(Locale.ROOT).equals(m.get("rope_layout"))) {
                rope = r;
            }
        }
        if (rope == null) {
            throw new MalformedTensorFileException(name + ": " + CONFIG_KEY + ": rope_layout "
                    + Json.write(m.get("rope_layout")) + ", expected \"interleaved\" or \"half_split\"");
        }
        if (!(m.get("tie_word_embeddings") instanceof Boolean tied)) {
            throw new MalformedTensorFileException(name + ": " + CONFIG_KEY + ": tie_word_embeddings must be true or"
                    + " false, got " + Json.write(m.get("tie_word_embeddings")));
        }
        LlamaConfig config;
        try {
            config = new LlamaConfig(
                    integer(name, m, "hidden_size"),
                    integer(name, m, "intermediate_size"),
                    integer(name, m, "num_hidden_layers"),
                    integer(name, m, "num_attention_heads"),
                    integer(name, m, "num_key_value_heads"),
                    integer(name, m, "head_dim"),
                    integer(name, m, "vocab_size"),
                    integer(name, m, "max_position_embeddings"),
                    number(name, m, "rope_theta"),
                    number(name, m, "rms_norm_eps"),
                    rope,
                    tied);
        } catch (MalformedTensorFileException e) {
            throw e;
        } catch (IllegalArgumentException e) {
            throw new MalformedTensorFileException(name + ": " + CONFIG_KEY + ": " + e.getMessage());
        }
        return new Header(format, config);
    }

    private static int integer(String name, Map<?, ?> m, String key) {
        if (!(m.get(key) instanceof Long l) || l < 1 || l > Integer.MAX_VALUE) {
            throw new MalformedTensorFileException(
                    name + ": " + CONFIG_KEY + ": '" + key + "' is " + m.get(key) + ", expected a positive integer");
        }
        return (int) (long) l;
    }

    private static double number(String name, Map<?, ?> m, String key) {
        if (!(m.get(key) instanceof Number n)) {
            throw new MalformedTensorFileException(
                    name + ": " + CONFIG_KEY + ": '" + key + "' is " + m.get(key) + ", expected a number");
        }
        return n.doubleValue();
    }
}
