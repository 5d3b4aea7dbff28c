package dev.quant4j.io;

import dev.quant4j.tensor.FloatMatrix;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A llama2.c checkpoint ({@code .bin}, the legacy layout {@code run.c} reads): a header of seven little-endian int32
 * ({@code dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len}; a negative {@code vocab_size} means
 * the output head is stored after the weights instead of shared with the embedding table), then float32 tensors in
 * the order of {@code run.c}'s {@code memory_map_weights}: the embedding table, every layer's attention RMSNorm
 * weight, {@code wq}, {@code wk}, {@code wv}, {@code wo}, the MLP RMSNorm weights, {@code w1}, {@code w2}, {@code w3},
 * the final RMSNorm weight, two unused tables of {@code seq_len * head_size / 2} floats (the old {@code freq_cis}),
 * and the output head when it is not shared. Each tensor holds all layers, layer after layer.
 *
 * <p>The tensors are returned under Hugging Face's names ({@code wq} of layer 0 is {@code
 * model.layers.0.self_attn.q_proj.weight}, {@code w1} is {@code mlp.gate_proj}, {@code w3} is {@code mlp.up_proj},
 * {@code w2} is {@code mlp.down_proj}), matrices {@code [out, in]} and vectors {@code [1, n]}. The query and key rows
 * are in the interleaved rotary layout (Meta's), not Hugging Face's permuted one.
 *
 * <p>The two rotary tables ({@code export.py} writes {@code freqs_cos} and {@code freqs_sin} there, {@code [seq_len,
 * head_size / 2]} each; {@code run.c} skips them) are kept as read, so that {@link #write} gives back the file's bytes
 * exactly; {@link #ropeTables} computes them for a checkpoint made from other tensors.
 *
 * <p>Layout from llama2.c's {@code run.c} and {@code export.py} (legacy_export), github.com/karpathy/llama2.c at
 * 350e04fe35433e6d2941dce5a1f53308f87058eb.
 *
 * @param source the file's name in messages
 * @param header the seven header fields
 * @param tensors every weight, in file order
 * @param freqsCos the first rotary table, {@code [seq_len, head_size / 2]}
 * @param freqsSin the second rotary table, {@code [seq_len, head_size / 2]}
 */
public record Llama2cCheckpoint(
        String source, Header header, Map<String, FloatMatrix> tensors, FloatMatrix freqsCos, FloatMatrix freqsSin) {

    /** The header of the legacy layout: 28 bytes. */
    public static final int HEADER_BYTES = 7 * Integer.BYTES;

    /** What {@code export.py}'s newer versions write first ({@code "ak42"}), which {@code run.c} does not read. */
    static final int VERSIONED_MAGIC = 0x616b3432;

    /**
     * The header's fields.
     *
     * @param sharedClassifier whether the output head is the embedding table (a positive {@code vocab_size} in the
     *     file)
     */
    public record Header(
            int dim,
            int hiddenDim,
            int layers,
            int heads,
            int kvHeads,
            int vocabSize,
            int seqLen,
            boolean sharedClassifier) {

        /** The width of one head, {@code dim / heads}. */
        public int headSize() {
            return dim / heads;
        }

        /** The width of the keys (and values) of all key/value heads, {@code kvHeads * headSize}. */
        public int kvDim() {
            return kvHeads * headSize();
        }
    }

    /** Reads a whole checkpoint; every size is checked against the header before anything is read. */
    public static Llama2cCheckpoint read(Path path) throws IOException {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            return read(path.getFileName().toString(), ch.size(), ch::read);
        }
    }

    /** {@link #read(Path)} of a checkpoint held in memory; {@code source} names it in messages. */
    public static Llama2cCheckpoint parse(byte[] bytes, String source) {
        try {
            return read(source, bytes.length, (dst, pos) -> {
                if (pos >= bytes.length) {
                    return -1;
                }
                int n = (int) Math.min(dst.remaining(), bytes.length - pos);
                dst.put(bytes, (int) pos, n);
                return n;
            });
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e); // reading memory does not fail
        }
    }

    private static Llama2cCheckpoint read(String source, long size, PositionalReads.Source ch) throws IOException {
        if (size < HEADER_BYTES) {
            throw new MalformedTensorFileException(
                    source + ": " + size + " bytes, shorter than the 28-byte llama2.c header");
        }
        ByteBuffer hb = ByteBuffer.allocate(HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        readFully(ch, hb, 0, source);
        Header header = header(source, hb.flip(), size);
        Map<String, FloatMatrix> tensors = new LinkedHashMap<>();
        long pos = HEADER_BYTES;
        for (Slot s : layout(header)) {
            long count = (long) s.rows() * s.cols();
            if (count > Integer.MAX_VALUE - 8 || count * Float.BYTES > Integer.MAX_VALUE) {
                throw new MalformedTensorFileException(source + ": tensor '" + s.name() + "' [" + s.rows() + ", "
                        + s.cols() + "] is larger than 2 GiB");
            }
            ByteBuffer b = ByteBuffer.allocate((int) count * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, b, pos, source);
            pos += b.capacity();
            float[] data = new float[(int) count];
            b.flip().asFloatBuffer().get(data);
            tensors.put(s.name(), FloatMatrix.of(s.name(), s.rows(), s.cols(), data, 0));
        }
        FloatMatrix cos = tensors.remove(FREQS_COS);
        FloatMatrix sin = tensors.remove(FREQS_SIN);
        return new Llama2cCheckpoint(source, header, Collections.unmodifiableMap(tensors), cos, sin);
    }

    /** The names of the rotary tables in {@link #layout}; they are not among {@link #tensors()}. */
    private static final String FREQS_COS = "freqs_cos";

    private static final String FREQS_SIN = "freqs_sin";

    /** One tensor of the file: its name and shape. */
    private record Slot(String name, int rows, int cols) {}

    /** Every tensor of a file with this header, in file order (the reader's and the writer's single source). */
    private static List<Slot> layout(Header h) {
        List<Slot> slots = new ArrayList<>();
        int dim = h.dim();
        int kvDim = h.kvDim();
        int hidden = h.hiddenDim();
        slots.add(new Slot("model.embed_tokens.weight", h.vocabSize(), dim));
        perLayer(slots, h.layers(), "input_layernorm.weight", 1, dim);
        perLayer(slots, h.layers(), "self_attn.q_proj.weight", dim, dim);
        perLayer(slots, h.layers(), "self_attn.k_proj.weight", kvDim, dim);
        perLayer(slots, h.layers(), "self_attn.v_proj.weight", kvDim, dim);
        perLayer(slots, h.layers(), "self_attn.o_proj.weight", dim, dim);
        perLayer(slots, h.layers(), "post_attention_layernorm.weight", 1, dim);
        perLayer(slots, h.layers(), "mlp.gate_proj.weight", hidden, dim);
        perLayer(slots, h.layers(), "mlp.down_proj.weight", dim, hidden);
        perLayer(slots, h.layers(), "mlp.up_proj.weight", hidden, dim);
        slots.add(new Slot("model.norm.weight", 1, dim));
        slots.add(new Slot(FREQS_COS, h.seqLen(), h.headSize() / 2));
        slots.add(new Slot(FREQS_SIN, h.seqLen(), h.headSize() / 2));
        if (!h.sharedClassifier()) {
            slots.add(new Slot("lm_head.weight", h.vocabSize(), dim));
        }
        return slots;
    }

    private static void perLayer(List<Slot> slots, int layers, String suffix, int rows, int cols) {
        for (int l = 0; l < layers; l++) {
            slots.add(new Slot("model.layers." + l + "." + suffix, rows, cols));
        }
    }

    /**
     * The rotary tables {@code export.py} stores for a header ({@code precompute_freqs_cis} in llama2.c's {@code
     * model.py}, rotary base 10000): {@code cos} and {@code sin} of {@code t * 10000^(-2j / head_size)} for position
     * {@code t} and pair {@code j}, in float32. {@code run.c} does not read them; these may differ from PyTorch's in
     * the last bit.
     *
     * @return the two tables, cos first, each {@code [seq_len, head_size / 2]}
     */
    public static FloatMatrix[] ropeTables(Header h) {
        int half = h.headSize() / 2;
        float[] cos = new float[h.seqLen() * half];
        float[] sin = new float[cos.length];
        for (int j = 0; j < half; j++) {
            float frequency = (float) (1 / Math.pow(10000, (float) (2 * j) / h.headSize()));
            for (int t = 0; t < h.seqLen(); t++) {
                float angle = t * frequency;
                cos[t * half + j] = (float) Math.cos(angle);
                sin[t * half + j] = (float) Math.sin(angle);
            }
        }
        return new FloatMatrix[] {
            FloatMatrix.of(FREQS_COS, h.seqLen(), half, cos, 0), FloatMatrix.of(FREQS_SIN, h.seqLen(), half, sin, 0)
        };
    }

    /**
     * Writes this checkpoint atomically to {@code path}, as {@link #toBytes()}.
     *
     * @throws IllegalArgumentException as {@link #toBytes()}
     */
    public void write(Path path) throws IOException {
        byte[] bytes = toBytes();
        AtomicFiles.write(path, out -> out.write(bytes));
    }

    /**
     * The file's bytes: the header, then every tensor in {@code run.c}'s order; the inverse of {@link #read(Path)}.
     *
     * @throws IllegalArgumentException if a tensor the header calls for is missing or misshapen (naming it), if
     *     {@link #tensors()} holds one it does not, or if the file would exceed 2 GiB
     */
    public byte[] toBytes() {
        long size = expectedBytes(header);
        if (size < 0 || size > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(source + ": a checkpoint of " + size + " bytes is larger than 2 GiB");
        }
        ByteBuffer b = ByteBuffer.allocate((int) size).order(ByteOrder.LITTLE_ENDIAN);
        Header h = header;
        for (int v : new int[] {
            h.dim(),
            h.hiddenDim(),
            h.layers(),
            h.heads(),
            h.kvHeads(),
            h.sharedClassifier() ? h.vocabSize() : -h.vocabSize(),
            h.seqLen()
        }) {
            b.putInt(v);
        }
        int written = 0;
        for (Slot s : layout(h)) {
            FloatMatrix m = switch (s.name()) {
                case FREQS_COS -> freqsCos;
                case FREQS_SIN -> freqsSin;
                default -> tensors.get(s.name());
            };
            if (m == null) {
                throw new IllegalArgumentException(source + ": no tensor '" + s.name() + "'");
            }
            if (m.rows() != s.rows() || m.cols() != s.cols()) {
                throw new IllegalArgumentException(source + ": tensor '" + s.name() + "' is [" + m.rows() + ", "
                        + m.cols() + "], the header needs [" + s.rows() + ", " + s.cols() + "]");
            }
            b.asFloatBuffer().put(m.toArray());
            b.position(b.position() + s.rows() * s.cols() * Float.BYTES);
            if (!s.name().equals(FREQS_COS) && !s.name().equals(FREQS_SIN)) {
                written++;
            }
        }
        if (written != tensors.size()) {
            List<String> extra = new ArrayList<>(tensors.keySet());
            extra.removeAll(layout(h).stream().map(Slot::name).toList());
            throw new IllegalArgumentException(
                    source + ": tensors " + extra + " have no place in a llama2.c checkpoint");
        }
        return b.array();
    }

    private static Header header(String source, ByteBuffer b, long fileSize) {
        int first = b.getInt(0);
        if (first == VERSIONED_MAGIC) {
            throw new MalformedTensorFileException(source + ": a llama2.c export of version " + b.getInt(4)
                    + " ('ak42' header); only the legacy layout run.c reads is supported (export.py --version 0)");
        }
        String[] names = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
        int[] v = new int[7];
        for (int i = 0; i < 7; i++) {
            v[i] = b.getInt(4 * i);
            if (v[i] == 0 || (v[i] < 0 && i != 5) || v[i] == Integer.MIN_VALUE) {
                throw new MalformedTensorFileException(source + ": header field " + names[i] + " is " + v[i]);
            }
        }
        int dim = v[0];
        int heads = v[3];
        int kvHeads = v[4];
        if (dim % heads != 0 || kvHeads > heads || heads % kvHeads != 0) {
            throw new MalformedTensorFileException(source + ": header dim " + dim + ", n_heads " + heads
                    + ", n_kv_heads " + kvHeads + ": n_heads must divide dim and n_kv_heads must divide n_heads");
        }
        if ((dim / heads) % 2 != 0) {
            throw new MalformedTensorFileException(source + ": header dim " + dim + ", n_heads " + heads
                    + ": the head size " + dim / heads + " is odd, and rotary embedding rotates pairs");
        }
        Header h = new Header(dim, v[1], v[2], heads, kvHeads, Math.abs(v[5]), v[6], v[5] > 0);
        long expected = expectedBytes(h);
        if (expected != fileSize) {
            throw new MalformedTensorFileException(source + ": the header (dim " + dim + ", hidden_dim " + v[1]
                    + ", n_layers " + v[2] + ", n_heads " + heads + ", n_kv_heads " + kvHeads + ", vocab_size "
                    + v[5] + ", seq_len " + v[6] + ") needs " + (expected < 0 ? "more than 2^63" : expected)
                    + " bytes, the file has " + fileSize);
        }
        return h;
    }

    /** The file size the header implies, or -1 if it overflows. */
    static long expectedBytes(Header h) {
        try {
            long dim = h.dim();
            long layers = h.layers();
            long kv = h.kvDim();
            long perLayer = Math.addExact(
                    Math.addExact(Math.multiplyExact(2 * dim, dim), Math.multiplyExact(2 * dim, kv)),
                    Math.addExact(2 * dim, Math.multiplyExact(3 * dim, (long) h.hiddenDim())));
            long floats = Math.multiplyExact((long) h.vocabSize(), dim);
            floats = Math.addExact(floats, Math.multiplyExact(layers, perLayer));
            floats = Math.addExact(floats, dim);
            floats = Math.addExact(floats, (long) h.seqLen() * h.headSize());
            if (!h.sharedClassifier()) {
                floats = Math.addExact(floats, Math.multiplyExact((long) h.vocabSize(), dim));
            }
            return Math.addExact(HEADER_BYTES, Math.multiplyExact(floats, Float.BYTES));
        } catch (ArithmeticException e) {
            return -1;
        }
    }

    private static void readFully(PositionalReads.Source ch, ByteBuffer b, long pos, String source) throws IOException {
        PositionalReads.readFully(
                ch, b, pos, at -> new MalformedTensorFileException(source + ": ends early, at byte " + at));
    }
}
