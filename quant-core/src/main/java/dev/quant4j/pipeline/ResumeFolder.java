package dev.quant4j.pipeline;

import dev.quant4j.internal.Json;
import dev.quant4j.io.AtomicFiles;
import dev.quant4j.io.DType;
import dev.quant4j.io.MalformedTensorFileException;
import dev.quant4j.io.SafeTensorsStreamWriter.Spec;
import dev.quant4j.pipeline.DecoderQuantizer.LayerReport;
import dev.quant4j.tensor.FloatMatrix;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.zip.CRC32C;

/**
 * What a block-by-block GPTQ of a Hugging Face folder ({@link QuantizedDecoderFile#writeStreamed(Path,
 * dev.quant4j.model.HuggingFaceLlama.Checkpoint, DecoderQuantizer, List, String, DecoderQuantizer.BlockSink,
 * ResumeFolder)}) keeps after each block, so that a run stopped on the way (killed, out of memory, the machine asleep)
 * continues from its last finished block and writes the same bytes an uninterrupted run writes. The folder {@code
 * OUT.resume} beside the output {@code OUT} holds:
 *
 * <ul>
 *   <li>{@code state.json}: the run's {@link Identity}, the block count, and for each finished block its quantized
 *       tensors (name, dtype, shape, in the order of the spill), their {@code __metadata__} entries, a CRC-32C of their
 *       bytes and its layer reports; then the file holding the next block's inputs with its size and CRC-32C;
 *   <li>{@code tensors.spill}: the finished blocks' tensor bytes one after another ({@link
 *       dev.quant4j.io.SafeTensorsSpillWriter#open});
 *   <li>{@code inputs-N.f32}: the inputs of block N (the outputs of block N - 1, every layer before quantized): each
 *       calibration sequence's hidden states {@code [tokens, hidden]} one after another, float32 little-endian, so
 *       {@code tokens x hidden x 4} bytes in all.
 * </ul>
 *
 * <p>After a block the spill is forced to the disk, the new inputs are written to a temporary file, forced and moved
 * into place, then {@code state.json} likewise; only then is the previous inputs file deleted. Whenever the run stops,
 * {@code state.json} names a whole inputs file and no more spill bytes than are there (bytes after them, a block half
 * written, are cut off when the run continues).
 */
public final class ResumeFolder {

    /** What the folder's name adds to the output's. */
    public static final String SUFFIX = ".resume";

    static final String STATE = "state.json";
    static final String LOCK = "lock";
    private static final String CONFIG = "config.json";
    private static final String INDEX = "model.safetensors.index.json";
    private static final String SINGLE = "model.safetensors";
    static final String SPILL = "tensors.spill";
    private static final String VERSION_KEY = "quant4j_resume";
    private static final long VERSION = 1;

    /**
     * What a resumed run must share with the run that saved the state: a state is continued only by a command with
     * the same identity.
     *
     * @param model the model's files: {@code config.json} and the index by SHA-256 (their first 16 hex digits), every
     *     shard the index names (or {@code model.safetensors}) by name and size
     * @param setting the quantization ({@link DecoderQuantizer.Setting#label()}) and the method the file names
     * @param calibration the calibration sequences: their count, length and the SHA-256 of their ids
     */
    public record Identity(List<String> model, String setting, String calibration) {
        public Identity {
            model = List.copyOf(model);
        }

        /** The identity of a run quantizing the folder {@code modelDir} with {@code setting} on {@code calibration}. */
        public static Identity of(
                Path modelDir, DecoderQuantizer.Setting setting, String method, List<int[]> calibration)
                throws IOException {
            List<String> model = new ArrayList<>();
            model.add(CONFIG + " sha256 " + sha256(Files.readAllBytes(modelDir.resolve(CONFIG))));
            // the files HuggingFaceLlama.open reads: the index and the shards it names, or the single file
            java.util.SortedSet<String> weights = new java.util.TreeSet<>();
            Path index = modelDir.resolve(INDEX);
            if (Files.isRegularFile(index)) {
                byte[] bytes = Files.readAllBytes(index);
                model.add(INDEX + " sha256 " + sha256(bytes));
                try {
                    Map<?, ?> map = (Map<?, ?>)
                            ((Map<?, ?>) Json.parse(new String(bytes, StandardCharsets.UTF_8))).get("weight_map");
                    for (Object shard : map.values()) {
                        weights.add((String) shard);
                    }
                } catch (IllegalArgumentException | ClassCastException | NullPointerException e) {
                    throw new MalformedTensorFileException(index + ": no weight_map of shard names");
                }
            } else {
                weights.add(SINGLE);
            }
            for (String w : weights) {
                model.add(w + " " + Files.size(modelDir.resolve(w)) + " bytes");
            }
            return new Identity(model, method + ": " + setting.label(), describe(calibration));
        }

        /** What differs between this identity and {@code saved}'s, as a phrase; null when nothing does. */
        public String difference(Identity saved) {
            if (!model.equals(saved.model)) {
                for (String s : saved.model) {
                    if (!model.contains(s)) {
                        return "another model (" + s + " there, " + counterpart(s, model) + " here)";
                    }
                }
                for (String s : model) {
                    if (!saved.model.contains(s)) {
                        return "another model (" + s + " here, not there)";
                    }
                }
            }
            if (!setting.equals(saved.setting)) {
                return "another setting (" + saved.setting + " there, " + setting + " here)";
            }
            if (!calibration.equals(saved.calibration)) {
                return "another calibration (" + saved.calibration + " there, " + calibration + " here)";
            }
            return null;
        }

        private static String counterpart(String item, List<String> model) {
            String file = item.substring(0, item.indexOf(' '));
            for (String s : model) {
                if (s.startsWith(file + " ")) {
                    return s;
                }
            }
            return "no " + file;
        }

        private static String describe(List<int[]> calibration) {
            MessageDigest sha = sha256();
            long tokens = 0;
            int min = Integer.MAX_VALUE;
            int max = 0;
            for (int[] seq : calibration) {
                ByteBuffer b = ByteBuffer.allocate(4 + 4 * seq.length).order(ByteOrder.LITTLE_ENDIAN);
                b.putInt(seq.length);
                for (int id : seq) {
                    b.putInt(id);
                }
                sha.update(b.array());
                tokens += seq.length;
                min = Math.min(min, seq.length);
                max = Math.max(max, seq.length);
            }
            int n = calibration.size();
            String shape =
                    min == max ? n + " sequences of " + max + " tokens" : n + " sequences, " + tokens + " tokens";
            return shape + ", ids sha256 " + hex16(sha.digest());
        }
    }

    /**
     * One finished block.
     *
     * @param tensors its tensors in the spill, in order
     * @param metadata its {@code __metadata__} entries, in order
     * @param crc32c the CRC-32C of its tensors' bytes
     * @param reports its layer reports, in forward order
     */
    public record Block(List<Spec> tensors, Map<String, String> metadata, long crc32c, List<LayerReport> reports) {
        public Block {
            tensors = List.copyOf(tensors);
            metadata = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
            reports = List.copyOf(reports);
        }

        /** Bytes of its tensors. */
        public long bytes() {
            long n = 0;
            for (Spec s : tensors) {
                n += s.bytes();
            }
            return n;
        }
    }

    /**
     * A saved state.
     *
     * @param identity the run's
     * @param layers the model's block count
     * @param blocks the finished blocks, from block 0
     * @param inputs the file holding the next block's inputs (null when every block is done)
     * @param inputsBytes its size
     * @param inputsCrc32c the CRC-32C of its bytes
     */
    public record State(
            Identity identity, int layers, List<Block> blocks, String inputs, long inputsBytes, long inputsCrc32c) {
        public State {
            blocks = List.copyOf(blocks);
        }

        /** How many blocks are done. */
        public int done() {
            return blocks.size();
        }
    }

    private final Path dir;
    private final Identity identity;

    private ResumeFolder(Path dir, Identity identity) {
        this.dir = dir;
        this.identity = identity;
    }

    /** The folder of the output {@code out} ({@code OUT.resume}) for a run of identity {@code identity}. */
    public static ResumeFolder of(Path out, Identity identity) {
        return new ResumeFolder(folderOf(out), java.util.Objects.requireNonNull(identity, "identity"));
    }

    /** {@code OUT.resume} beside {@code out}. */
    public static Path folderOf(Path out) {
        Path abs = out.toAbsolutePath();
        return abs.resolveSibling(abs.getFileName() + SUFFIX);
    }

    /** Whether the output {@code out} has a saved state beside it. */
    public static boolean hasState(Path out) {
        return Files.isRegularFile(folderOf(out).resolve(STATE));
    }

    /** The folder. */
    public Path dir() {
        return dir;
    }

    /** The identity of the run that uses the folder. */
    public Identity identity() {
        return identity;
    }

    /** The spill file. */
    Path spill() {
        return dir.resolve(SPILL);
    }

    /**
     * Why this run cannot continue the state {@code saved} of a model of {@code layers} blocks: the phrase naming what
     * differs, or null when it can.
     */
    public String mismatch(State saved, int layers) {
        String why = identity.difference(saved.identity());
        if (why == null && saved.layers() != layers) {
            why = "another model (" + saved.layers() + " blocks there, " + layers + " here)";
        }
        return why;
    }

    /**
     * The saved state, or empty when there is none.
     *
     * @throws MalformedTensorFileException when {@code state.json} is not one this class writes
     */
    public Optional<State> read() throws IOException {
        Path file = dir.resolve(STATE);
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            return Optional.empty();
        }
        try {
            return Optional.of(parse(text));
        } catch (IllegalArgumentException | ClassCastException | NullPointerException e) {
            throw new MalformedTensorFileException(file + ": not a resume state quant4j reads (" + e.getMessage()
                    + "); delete " + dir + " to start over");
        }
    }

    private static State parse(String text) {
        Map<?, ?> m = (Map<?, ?>) Json.parse(text);
        if (!Long.valueOf(VERSION).equals(m.get(VERSION_KEY))) {
            throw new IllegalArgumentException(VERSION_KEY + " is " + m.get(VERSION_KEY) + ", expected " + VERSION);
        }
        Map<?, ?> id = (Map<?, ?>) m.get("identity");
        List<String> model = new ArrayList<>();
        for (Object o : (List<?>) id.get("model")) {
            model.add((String) o);
        }
        Identity identity = new Identity(model, (String) id.get("setting"), (String) id.get("calibration"));
        List<Block> blocks = new ArrayList<>();
        for (Object o : (List<?>) m.get("blocks")) {
            Map<?, ?> b = (Map<?, ?>) o;
            List<Spec> tensors = new ArrayList<>();
            for (Object t : (List<?>) b.get("tensors")) {
                List<?> l = (List<?>) t;
                List<?> dims = (List<?>) l.get(2);
                long[] shape = new long[dims.size()];
                for (int i = 0; i < shape.length; i++) {
                    shape[i] = (Long) dims.get(i);
                }
                tensors.add(new Spec((String) l.get(0), DType.fromSafetensors((String) l.get(1)), shape));
            }
            Map<String, String> metadata = new LinkedHashMap<>();
            for (Map.Entry<?, ?> e : ((Map<?, ?>) b.get("metadata")).entrySet()) {
                metadata.put((String) e.getKey(), (String) e.getValue());
            }
            List<LayerReport> reports = new ArrayList<>();
            for (Object r : (List<?>) b.get("reports")) {
                List<?> l = (List<?>) r;
                reports.add(new LayerReport(
                        (String) l.get(0),
                        (String) l.get(1),
                        Double.parseDouble((String) l.get(2)),
                        Double.parseDouble((String) l.get(3)),
                        (Boolean) l.get(4)));
            }
            blocks.add(new Block(tensors, metadata, (Long) b.get("crc32c"), reports));
        }
        int layers = Math.toIntExact((Long) m.get("layers"));
        Map<?, ?> inputs = (Map<?, ?>) m.get("inputs");
        if ((inputs == null) != (blocks.size() == layers) || blocks.isEmpty() || blocks.size() > layers) {
            throw new IllegalArgumentException(blocks.size() + " of " + layers + " blocks done, "
                    + (inputs == null ? "no" : "an") + " inputs file");
        }
        return inputs == null
                ? new State(identity, layers, blocks, null, 0, 0)
                : new State(identity, layers, blocks, (String) inputs.get("file"), (Long) inputs.get("bytes"), (Long)
                        inputs.get("crc32c"));
    }

    /** Writes {@code state} (which must be of this run's identity) as {@code state.json}, atomically and durably. */
    void save(State state) throws IOException {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put(VERSION_KEY, VERSION);
        Map<String, Object> id = new LinkedHashMap<>();
        id.put("model", state.identity().model());
        id.put("setting", state.identity().setting());
        id.put("calibration", state.identity().calibration());
        m.put("identity", id);
        m.put("layers", (long) state.layers());
        List<Object> blocks = new ArrayList<>();
        for (Block b : state.blocks()) {
            Map<String, Object> o = new LinkedHashMap<>();
            List<Object> tensors = new ArrayList<>();
            for (Spec s : b.tensors()) {
                List<Object> shape = new ArrayList<>();
                for (long d : s.shape()) {
                    shape.add(d);
                }
                tensors.add(List.of(s.name(), s.dtype().name(), shape));
            }
            o.put("tensors", tensors);
            o.put("metadata", b.metadata());
            o.put("crc32c", b.crc32c());
            List<Object> reports = new ArrayList<>();
            for (LayerReport r : b.reports()) {
                // as text, so that every double (NaN included) comes back bit for bit
                reports.add(List.of(
                        r.name(),
                        r.scheme(),
                        Double.toString(r.gptqError()),
                        Double.toString(r.rtnError()),
                        r.keptRtn()));
            }
            o.put("reports", reports);
            blocks.add(o);
        }
        m.put("blocks", blocks);
        if (state.inputs() != null) {
            Map<String, Object> inputs = new LinkedHashMap<>();
            inputs.put("file", state.inputs());
            inputs.put("bytes", state.inputsBytes());
            inputs.put("crc32c", state.inputsCrc32c());
            m.put("inputs", inputs);
        }
        byte[] bytes = Json.write(m).getBytes(StandardCharsets.UTF_8);
        AtomicFiles.writeFile(dir.resolve(STATE), tmp -> {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
                ByteBuffer b = ByteBuffer.wrap(bytes);
                while (b.hasRemaining()) {
                    ch.write(b);
                }
                ch.force(true);
            }
        });
    }

    /** The name of the file holding block {@code block}'s inputs. */
    static String inputsName(int block) {
        return String.format(Locale.ROOT, "inputs-%d.f32", block);
    }

    /** What {@link #saveInputs} wrote: the file's name, size and CRC-32C. */
    record Saved(String file, long bytes, long crc32c) {}

    /**
     * Writes {@code states}, block {@code block}'s inputs, to {@link #inputsName}{@code (block)}: atomically (a
     * temporary file forced to the disk, then moved).
     */
    Saved saveInputs(int block, List<FloatMatrix> states) throws IOException {
        String name = inputsName(block);
        CRC32C crc = new CRC32C();
        long[] bytes = {0};
        AtomicFiles.writeFile(dir.resolve(name), tmp -> {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
                ByteBuffer buf = ByteBuffer.allocateDirect(1 << 22).order(ByteOrder.LITTLE_ENDIAN);
                FloatBuffer floats = buf.asFloatBuffer();
                for (FloatMatrix x : states) {
                    float[] a = x.array();
                    int from = x.rowOffset(0);
                    long n = x.size();
                    for (long i = 0; i < n; ) {
                        int k = (int) Math.min(n - i, floats.capacity());
                        floats.clear();
                        floats.put(a, from + (int) i, k);
                        buf.clear().limit(k * Float.BYTES);
                        crc.update(buf.duplicate());
                        while (buf.hasRemaining()) {
                            ch.write(buf);
                        }
                        bytes[0] += (long) k * Float.BYTES;
                        i += k;
                    }
                }
                ch.force(true);
            }
        });
        return new Saved(name, bytes[0], crc.getValue());
    }

    /**
     * The inputs {@code saved} names: one matrix {@code [length, dim]} per calibration sequence.
     *
     * @throws MalformedTensorFileException when the file's size or CRC-32C is not the one saved
     */
    List<FloatMatrix> readInputs(State saved, List<int[]> calibration, int dim) throws IOException {
        Path file = dir.resolve(saved.inputs());
        long tokens = 0;
        for (int[] seq : calibration) {
            tokens += seq.length;
        }
        long expected = tokens * dim * Float.BYTES;
        List<FloatMatrix> states = new ArrayList<>();
        CRC32C crc = new CRC32C();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            if (ch.size() != expected || saved.inputsBytes() != expected) {
                throw new MalformedTensorFileException(file + ": " + ch.size() + " bytes, " + saved.inputsBytes()
                        + " saved; " + tokens + " tokens x " + dim + " x 4 = " + expected + "; delete " + dir
                        + " to start over");
            }
            ByteBuffer buf = ByteBuffer.allocateDirect(1 << 22).order(ByteOrder.LITTLE_ENDIAN);
            long at = 0;
            for (int s = 0; s < calibration.size(); s++) {
                int rows = calibration.get(s).length;
                float[] a = new float[Math.multiplyExact(rows, dim)];
                for (int i = 0; i < a.length; ) {
                    int k = Math.min(a.length - i, buf.capacity() / Float.BYTES);
                    buf.clear().limit(k * Float.BYTES);
                    while (buf.hasRemaining()) {
                        if (ch.read(buf, at + buf.position()) < 0) {
                            throw new java.io.EOFException(file + ": ends at " + (at + buf.position()));
                        }
                    }
                    buf.flip();
                    crc.update(buf.duplicate());
                    buf.asFloatBuffer().get(a, i, k);
                    at += (long) k * Float.BYTES;
                    i += k;
                }
                states.add(FloatMatrix.of("block " + saved.done() + " input " + s, rows, dim, a, 0));
            }
        }
        if (crc.getValue() != saved.inputsCrc32c()) {
            throw new MalformedTensorFileException(file + ": its bytes do not match the CRC-32C saved in " + STATE
                    + " (the file was changed or damaged); delete " + dir + " to start over");
        }
        return states;
    }

    /** The folder's lock, held by one process at a time; closing releases it. */
    static final class Lock implements AutoCloseable {
        private final FileChannel channel;

        private Lock(FileChannel channel) {
            this.channel = channel;
        }

        @Override
        public void close() throws IOException {
            channel.close();
        }
    }

    /**
     * Creates the folder (when missing) and locks it ({@code lock}, {@link FileChannel#tryLock}), so that two runs
     * never write one state.
     *
     * @throws IllegalArgumentException when another run holds the lock
     */
    Lock lock() throws IOException {
        Files.createDirectories(dir);
        FileChannel channel = FileChannel.open(dir.resolve(LOCK), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        java.nio.channels.FileLock held;
        try {
            held = channel.tryLock();
        } catch (java.nio.channels.OverlappingFileLockException e) {
            held = null;
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
        if (held == null) {
            channel.close();
            throw new IllegalArgumentException(
                    dir + " is in use by another run (it holds " + dir.resolve(LOCK) + "); wait for it or stop it");
        }
        return new Lock(channel);
    }

    /** Deletes every inputs file but {@code keep} (null: every one), and the temporaries of killed writers. */
    void deleteInputsBut(String keep) throws IOException {
        try (DirectoryStream<Path> files = Files.newDirectoryStream(dir, "inputs-*.f32")) {
            for (Path p : files) {
                if (!p.getFileName().toString().equals(keep)) {
                    Files.deleteIfExists(p);
                }
            }
        }
    }

    /** Deletes the folder and every file in it (it holds no folders). */
    void delete() throws IOException {
        if (!Files.isDirectory(dir)) {
            return;
        }
        try (DirectoryStream<Path> files = Files.newDirectoryStream(dir)) {
            for (Path p : files) {
                Files.deleteIfExists(p);
            }
        }
        Files.deleteIfExists(dir);
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is in every JDK", e);
        }
    }

    private static String sha256(byte[] bytes) {
        return hex16(sha256().digest(bytes));
    }

    private static String hex16(byte[] digest) {
        return HexFormat.of().formatHex(digest, 0, 8);
    }
}
