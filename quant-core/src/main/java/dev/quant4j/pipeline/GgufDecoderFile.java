package dev.quant4j.pipeline;

import dev.quant4j.ggml.GgmlQuants;
import dev.quant4j.ggml.GgmlType;
import dev.quant4j.io.Gguf;
import dev.quant4j.io.GgufValue;
import dev.quant4j.io.GgufValueType;
import dev.quant4j.io.GgufWriter;
import dev.quant4j.io.MalformedTensorFileException;
import dev.quant4j.model.LlamaConfig;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.model.RopeLayout;
import dev.quant4j.quant.ErrorMetrics;
import dev.quant4j.tensor.FloatMatrix;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ForkJoinPool;

/**
 * A whole decoder as a GGUF model of llama.cpp's {@code llama} architecture, laid out as llama.cpp's converters lay one
 * out ({@code convert_hf_to_gguf.py} with {@code conversion/llama.py}, {@code examples/convert-llama2c-to-ggml}; key
 * and tensor names from {@code gguf-py/gguf/constants.py} and {@code tensor_mapping.py}; llama.cpp at commit {@code
 * 81ff7abe50b95fb81cc70a6cdba1eb1a02a48f62}).
 *
 * <p>Metadata, in this order: {@code general.architecture = "llama"}, {@code general.name}, {@code llama.vocab_size,
 * context_length, embedding_length, feed_forward_length, block_count, attention.head_count, attention.head_count_kv,
 * attention.layer_norm_rms_epsilon} (float32), {@code rope.dimension_count} (the head size: every dimension rotates),
 * {@code rope.freq_base} (float32), {@code attention.key_length} and {@code value_length} only when the head size is
 * not {@code embedding_length / head_count}, {@code general.file_type} (llama.cpp's {@code enum llama_ftype} for the
 * requested type, {@link #fileType}), {@code general.quantization_version = 2}, then the vocabulary (a Hugging Face folder's tokenizer, {@link
 * GgufTokenizer}, or the placeholder, {@link #VOCABULARY}).
 *
 * <p>Tensors ({@link #ggufName}): {@code token_embd.weight}; per block {@code blk.N.attn_norm.weight}, {@code
 * attn_q}, {@code attn_k}, {@code attn_v} (each {@code .weight}, and {@code .bias} where the model has one), {@code
 * attn_output.weight}, {@code ffn_norm.weight}, {@code ffn_gate.weight}, {@code ffn_up.weight}, {@code
 * ffn_down.weight}; {@code output_norm.weight}; {@code output.weight} unless the embeddings are tied (llama.cpp then
 * uses {@code token_embd.weight}). A matrix {@code [out, in]} is stored with {@code ne = [in, out]}. llama.c's rotary
 * tables are not written (llama.cpp computes the rotation).
 *
 * <p>Rotary layout: GGUF's {@code llama} rotates dimension pairs {@code (2j, 2j + 1)} of each head ({@link
 * RopeLayout#INTERLEAVED}), as llama2.c does, so a llama2.c checkpoint's weights are written as they are. A Hugging
 * Face model ({@link RopeLayout#HALF_SPLIT}) has the rows of {@code q_proj} and {@code k_proj} (and their biases)
 * permuted for pairs {@code (j, j + d/2)}; they are permuted back ({@link #toInterleaved}) as {@code LlamaModel.permute}
 * in llama.cpp's {@code conversion/llama.py} does.
 *
 * <p>Types: one-dimensional tensors (norms, biases) are F32; every matrix takes the requested type when its row length
 * is a multiple of the type's block size, as {@code llama-quantize --pure} does, and otherwise the type llama.cpp's
 * {@code tensor_type_fallback} ({@code src/llama-quant.cpp}) picks: q4_K to q5_0, q5_K to q5_1, q6_K to q8_0, and F16
 * when that does not fit either. For the 32-blocks (q4_0 ... q8_0) llama.cpp defines no fallback and refuses the model;
 * quant4j writes F16 and reports it ({@link Stored#fallback()}).
 */
public final class GgufDecoderFile {

    /** {@code general.architecture}. */
    public static final String ARCHITECTURE = "llama";

    /** ggml's {@code GGML_QNT_VERSION}, stored as {@code general.quantization_version}. */
    public static final int QUANTIZATION_VERSION = 2;

    /**
     * What the vocabulary holds without a tokenizer ({@link GgufTokenizer} carries a Hugging Face folder's): a
     * placeholder that llama.cpp's {@code
     * llama} (SentencePiece) vocabulary loader accepts, one entry per row of the embedding table: {@code
     * tokenizer.ggml.model = "llama"}; {@code tokenizer.ggml.tokens} id 0 {@code <unk>} (type UNKNOWN), 1 {@code <s>}
     * and 2 {@code </s>} (CONTROL), ids 3 to 258 the byte tokens {@code <0x00>} ... {@code <0xFF>} (BYTE), every other
     * id {@code <tok_N>} (NORMAL); {@code tokenizer.ggml.scores} all 0; {@code tokenizer.ggml.token_type} as said;
     * {@code unknown_token_id 0}, {@code bos_token_id 1}, {@code eos_token_id 2}. The special and byte ids are where
     * Llama 2's SentencePiece vocabulary and llama2.c's trained vocabularies have them; the other pieces are not the
     * model's: the file runs on token ids, and text tokenized by llama.cpp with it is not what the model was trained on.
     */
    public static final String VOCABULARY = "placeholder";

    static final int BYTE_TOKENS_START = 3;

    /**
     * How one tensor was written.
     *
     * @param name its GGUF name
     * @param source its name in the source model
     * @param ne its GGUF extents
     * @param type the type it is stored in
     * @param fallback why it is not in the requested type, or null
     * @param error the stored values against the source's (null for tensors kept in F32)
     */
    public record Stored(String name, String source, long[] ne, GgmlType type, String fallback, ErrorMetrics error) {}

    /**
     * What was written.
     *
     * @param tensors every tensor in file order
     * @param skipped the source tensors the {@code llama} architecture has no place for (llama2.c's rotary tables, a
     *     tied model's duplicate output head, anything else), not written
     */
    public record Written(List<Stored> tensors, List<String> skipped) {
        public Written {
            tensors = List.copyOf(tensors);
            skipped = List.copyOf(skipped);
        }
    }

    /**
     * A matrix {@code [rows, cols]} already in a ggml type, {@code rows} rows of {@code type.rowSize(cols)} bytes in
     * the source model's row order, given to {@link #plan(QuantizedDecoderFile.Source, GgmlType, boolean, Map, Map)}
     * to be written as it is (GPTQ's blocks, {@link GgufDecoderGptq}).
     */
    public record Blocks(GgmlType type, int rows, int cols, byte[] data) {
        public Blocks {
            java.util.Objects.requireNonNull(type, "type");
            java.util.Objects.requireNonNull(data, "data");
            if (rows < 1 || cols < 1 || cols % type.blockSize() != 0) {
                throw new IllegalArgumentException(
                        "[" + rows + ", " + cols + "] is not a matrix of whole " + type + " blocks");
            }
            if (data.length != rows * type.rowSize(cols)) {
                throw new IllegalArgumentException(type + " [" + rows + ", " + cols + "] takes "
                        + rows * type.rowSize(cols) + " bytes, not " + data.length);
            }
        }
    }

    private GgufDecoderFile() {}

    /**
     * The GGUF name of a tensor under Hugging Face's name ({@code tensor_mapping.py}'s {@code MODEL_TENSOR}s of the
     * {@code llama} architecture), or null when the architecture has none.
     */
    public static String ggufName(String hfName) {
        switch (hfName) {
            case LlamaDecoder.EMBED_TOKENS:
                return "token_embd.weight";
            case LlamaDecoder.FINAL_NORM:
                return "output_norm.weight";
            case LlamaDecoder.LM_HEAD:
                return "output.weight";
            default:
                break;
        }
        String prefix = "model.layers.";
        if (!hfName.startsWith(prefix)) {
            return null;
        }
        int dot = hfName.indexOf('.', prefix.length());
        if (dot < 0) {
            return null;
        }
        String block = hfName.substring(prefix.length(), dot);
        if (block.isEmpty() || !block.chars().allMatch(c -> c >= '0' && c <= '9') || block.length() > 9) {
            return null;
        }
        String rest = switch (hfName.substring(dot + 1)) {
            case "input_layernorm.weight" -> "attn_norm.weight";
            case "self_attn.q_proj.weight" -> "attn_q.weight";
            case "self_attn.q_proj.bias" -> "attn_q.bias";
            case "self_attn.k_proj.weight" -> "attn_k.weight";
            case "self_attn.k_proj.bias" -> "attn_k.bias";
            case "self_attn.v_proj.weight" -> "attn_v.weight";
            case "self_attn.v_proj.bias" -> "attn_v.bias";
            case "self_attn.o_proj.weight" -> "attn_output.weight";
            case "post_attention_layernorm.weight" -> "ffn_norm.weight";
            case "mlp.gate_proj.weight" -> "ffn_gate.weight";
            case "mlp.up_proj.weight" -> "ffn_up.weight";
            case "mlp.down_proj.weight" -> "ffn_down.weight";
            default -> null;
        };
        return rest == null ? null : "blk." + Integer.parseInt(block) + "." + rest;
    }

    /** The Hugging Face names of a model's tensors, in the order they are written. */
    static List<String> order(LlamaConfig c) {
        List<String> names = new ArrayList<>();
        names.add(LlamaDecoder.EMBED_TOKENS);
        for (int l = 0; l < c.layers(); l++) {
            String p = "model.layers." + l + ".";
            names.add(p + "input_layernorm.weight");
            for (String m : List.of("q_proj", "k_proj", "v_proj")) {
                names.add(p + "self_attn." + m + ".weight");
                names.add(p + "self_attn." + m + ".bias");
            }
            names.add(p + "self_attn.o_proj.weight");
            names.add(p + "post_attention_layernorm.weight");
            names.add(p + "mlp.gate_proj.weight");
            names.add(p + "mlp.up_proj.weight");
            names.add(p + "mlp.down_proj.weight");
        }
        names.add(LlamaDecoder.FINAL_NORM);
        if (!c.tiedEmbeddings()) {
            names.add(LlamaDecoder.LM_HEAD);
        }
        return names;
    }

    /**
     * Rows of {@code w} (a {@code q_proj} or {@code k_proj} weight, or its bias as {@code [1, n]}) from Hugging Face's
     * half-split order back to the interleaved one: within each head of {@code d} rows, row {@code 2j + s} of the
     * result is row {@code s * d/2 + j} of {@code w}. This is {@code LlamaModel.permute} of llama.cpp's {@code
     * conversion/llama.py}, {@code w.reshape(heads, 2, d/2, ...).swapaxes(1, 2)}: the inverse of transformers' {@code
     * permute} in {@code convert_llama_weights_to_hf.py}.
     */
    public static FloatMatrix toInterleaved(FloatMatrix w, int heads, int d) {
        boolean vector = w.rows() == 1;
        int rows = vector ? w.cols() : w.rows();
        int width = vector ? 1 : w.cols();
        if (rows != heads * d) {
            throw new IllegalArgumentException("tensor '" + w.name() + "' has " + rows + " rows, " + heads
                    + " heads of " + d + " need " + heads * d);
        }
        float[] src = w.toArray();
        float[] out = new float[src.length];
        int half = d / 2;
        for (int h = 0; h < heads; h++) {
            for (int j = 0; j < half; j++) {
                for (int s = 0; s < 2; s++) {
                    int to = h * d + 2 * j + s;
                    int from = h * d + s * half + j;
                    System.arraycopy(src, from * width, out, to * width, width);
                }
            }
        }
        return FloatMatrix.of(w.name(), w.rows(), w.cols(), out, 0);
    }

    /**
     * {@link #toInterleaved(FloatMatrix, int, int)} on a matrix stored as {@code data}, rows of {@code rowBytes}
     * bytes (a row of ggml blocks moves as a whole).
     */
    static byte[] toInterleaved(byte[] data, int rowBytes, int heads, int d) {
        int rows = data.length / rowBytes;
        if (rows != heads * d || data.length % rowBytes != 0) {
            throw new IllegalArgumentException(
                    data.length + " bytes in rows of " + rowBytes + " are not " + heads + " heads of " + d + " rows");
        }
        byte[] out = new byte[data.length];
        int half = d / 2;
        for (int h = 0; h < heads; h++) {
            for (int j = 0; j < half; j++) {
                for (int s = 0; s < 2; s++) {
                    int to = h * d + 2 * j + s;
                    int from = h * d + s * half + j;
                    System.arraycopy(data, from * rowBytes, out, to * rowBytes, rowBytes);
                }
            }
        }
        return out;
    }

    /**
     * The type a matrix of rows of {@code cols} values is stored in when {@code requested} is asked for: {@code
     * requested} when {@code cols} is a multiple of its block size, else llama.cpp's fallback (see the class comment).
     */
    public static GgmlType storedType(GgmlType requested, int cols) {
        if (cols % requested.blockSize() == 0) {
            return requested;
        }
        GgmlType fallback = switch (requested) {
            case Q4_K -> GgmlType.Q5_0;
            case Q5_K -> GgmlType.Q5_1;
            case Q6_K -> GgmlType.Q8_0;
            default -> GgmlType.F16;
        };
        return cols % fallback.blockSize() == 0 ? fallback : GgmlType.F16;
    }

    /** llama.cpp's {@code general.file_type} ({@code enum llama_ftype}) for a file whose weights are {@code t}. */
    public static int fileType(GgmlType t) {
        return switch (t) {
            case F32 -> 0; // LLAMA_FTYPE_ALL_F32
            case F16 -> 1; // LLAMA_FTYPE_MOSTLY_F16
            case Q4_0 -> 2;
            case Q4_1 -> 3;
            case Q8_0 -> 7;
            case Q5_0 -> 8;
            case Q5_1 -> 9;
            case Q4_K -> 14; // LLAMA_FTYPE_MOSTLY_Q4_K_S: q4_K for all tensors
            case Q5_K -> 16; // LLAMA_FTYPE_MOSTLY_Q5_K_S
            case Q6_K -> 18;
            case BF16 -> 32;
            default -> throw new IllegalArgumentException("no llama.cpp file type for " + t);
        };
    }

    /**
     * The file's metadata for {@code source} with its weights in {@code type}: the model's hyperparameters, the file
     * type and the placeholder vocabulary ({@link #VOCABULARY}).
     */
    public static Map<String, GgufValue> metadata(QuantizedDecoderFile.Source source, GgmlType type) {
        return metadata(source, type, null);
    }

    /**
     * {@link #metadata(QuantizedDecoderFile.Source, GgmlType)} with {@code vocabulary}'s {@code tokenizer.ggml.*} keys
     * ({@link GgufTokenizer}) in place of the placeholder, unless null.
     */
    public static Map<String, GgufValue> metadata(
            QuantizedDecoderFile.Source source, GgmlType type, Map<String, GgufValue> vocabulary) {
        LlamaConfig c = source.config();
        String a = ARCHITECTURE + ".";
        Map<String, GgufValue> m = new LinkedHashMap<>();
        m.put("general.architecture", GgufValue.string(ARCHITECTURE));
        m.put("general.name", GgufValue.string(source.name()));
        m.put(a + "vocab_size", GgufValue.uint32(c.vocabSize()));
        m.put(a + "context_length", GgufValue.uint32(c.maxSeqLen()));
        m.put(a + "embedding_length", GgufValue.uint32(c.dim()));
        m.put(a + "feed_forward_length", GgufValue.uint32(c.hiddenDim()));
        m.put(a + "block_count", GgufValue.uint32(c.layers()));
        m.put(a + "attention.head_count", GgufValue.uint32(c.heads()));
        m.put(a + "attention.head_count_kv", GgufValue.uint32(c.kvHeads()));
        m.put(a + "attention.layer_norm_rms_epsilon", GgufValue.float32((float) c.normEps()));
        m.put(a + "rope.dimension_count", GgufValue.uint32(c.headDim()));
        m.put(a + "rope.freq_base", GgufValue.float32((float) c.ropeTheta()));
        if (c.headDim() * c.heads() != c.dim()) {
            m.put(a + "attention.key_length", GgufValue.uint32(c.headDim()));
            m.put(a + "attention.value_length", GgufValue.uint32(c.headDim()));
        }
        m.put("general.file_type", GgufValue.uint32(fileType(type)));
        m.put("general.quantization_version", GgufValue.uint32(QUANTIZATION_VERSION));
        m.putAll(vocabulary == null ? vocabulary(c.vocabSize()) : vocabulary);
        return m;
    }

    /** The placeholder vocabulary of {@code n} tokens ({@link #VOCABULARY}). */
    static Map<String, GgufValue> vocabulary(int n) {
        List<String> tokens = new ArrayList<>(n);
        List<Float> scores = new ArrayList<>(n);
        List<Long> types = new ArrayList<>(n);
        for (int id = 0; id < n; id++) {
            String text;
            long type;
            if (id == 0) {
                text = "<unk>";
                type = 2; // UNKNOWN
            } else if (id == 1 || id == 2) {
                text = id == 1 ? "<s>" : "</s>";
                type = 3; // CONTROL
            } else if (id < BYTE_TOKENS_START + 256) {
                text = String.format(Locale.ROOT, "<0x%02X>", id - BYTE_TOKENS_START);
                type = 6; // BYTE
            } else {
                text = "<tok_" + id + ">";
                type = 1; // NORMAL
            }
            tokens.add(text);
            scores.add(0f);
            types.add(type);
        }
        Map<String, GgufValue> m = new LinkedHashMap<>();
        m.put("tokenizer.ggml.model", GgufValue.string("llama"));
        m.put("tokenizer.ggml.tokens", GgufValue.array(GgufValueType.STRING, tokens));
        m.put("tokenizer.ggml.scores", GgufValue.array(GgufValueType.FLOAT32, scores));
        m.put("tokenizer.ggml.token_type", GgufValue.array(GgufValueType.INT32, types));
        String[] ids = {"unknown_token_id", "bos_token_id", "eos_token_id"};
        for (int id = 0; id < ids.length && id < n; id++) {
            m.put("tokenizer.ggml." + ids[id], GgufValue.uint32(id));
        }
        return m;
    }

    /**
     * The writer of {@code source}'s GGUF file with its matrices in {@code type} (quantized as ggml's reference
     * quantizers do, {@link GgmlQuants}) and what it holds. The stored bytes are held until the file is written (at
     * most the size of the float32 source, which is in memory already).
     *
     * @param strict refuse a matrix the type does not fit instead of falling back
     * @throws IllegalArgumentException for a type quant4j does not write, and with {@code strict} for a matrix whose
     *     rows are not whole blocks of {@code type}
     */
    public static Plan plan(QuantizedDecoderFile.Source source, GgmlType type, boolean strict) {
        return plan(source, type, strict, null);
    }

    /**
     * {@link #plan(QuantizedDecoderFile.Source, GgmlType, boolean)} with {@code vocabulary}'s {@code tokenizer.ggml.*}
     * keys ({@link GgufTokenizer#fromHuggingFace}) in place of the placeholder, unless null.
     */
    public static Plan plan(
            QuantizedDecoderFile.Source source, GgmlType type, boolean strict, Map<String, GgufValue> vocabulary) {
        return plan(source, type, strict, vocabulary, Map.of());
    }

    /**
     * {@link #plan(QuantizedDecoderFile.Source, GgmlType, boolean, Map)} with the matrices of {@code given} (by
     * Hugging Face name) written as they are instead of quantized here: a {@code q_proj} or {@code k_proj} of a Hugging
     * Face model has its rows permuted back to the interleaved layout ({@link #toInterleaved}) as whole rows of
     * blocks. A given matrix in another type than {@code type} is a fallback ({@link Stored#fallback()}).
     *
     * @throws IllegalArgumentException as the other plans, for a given matrix whose shape is not the source's, and
     *     for a name in {@code given} the file has no matrix for
     */
    public static Plan plan(
            QuantizedDecoderFile.Source source,
            GgmlType type,
            boolean strict,
            Map<String, GgufValue> vocabulary,
            Map<String, Blocks> given) {
        if (!type.quantizable()) {
            throw new IllegalArgumentException("GGUF type " + type + ": quant4j writes " + GgmlType.quantizableNames());
        }
        LlamaConfig c = source.config();
        Map<String, FloatMatrix> tensors = source.tensors();
        GgufWriter writer = new GgufWriter().putAll(metadata(source, type, vocabulary));
        List<Stored> stored = new ArrayList<>();
        Set<String> used = new LinkedHashSet<>();
        for (String hf : order(c)) {
            FloatMatrix t = tensors.get(hf);
            if (t == null) {
                if (hf.endsWith(".bias")) {
                    continue;
                }
                throw new IllegalArgumentException(source.name() + ": no tensor '" + hf + "'");
            }
            used.add(hf);
            String name = ggufName(hf);
            int heads = rotaryHeads(c, hf);
            FloatMatrix w = heads == 0 ? t : toInterleaved(t, heads, c.headDim());
            if (w.rows() == 1 && !hf.equals(LlamaDecoder.EMBED_TOKENS) && !hf.equals(LlamaDecoder.LM_HEAD)) {
                long[] ne = {w.cols()};
                writer.addTensor(name, ne, GgmlType.F32, f32(w));
                stored.add(new Stored(name, hf, ne, GgmlType.F32, null, null));
                continue;
            }
            GgmlType as = storedType(type, w.cols());
            String fallback = null;
            if (as != type) {
                fallback =
                        "its rows of " + w.cols() + " values are not whole " + type + " blocks of " + type.blockSize();
                if (strict) {
                    throw new IllegalArgumentException("tensor '" + hf + "' [" + w.rows() + ", " + w.cols() + "]: "
                            + fallback + " (strict: no fallback to " + as + ")");
                }
            }
            long[] ne = {w.cols(), w.rows()};
            Blocks b = given.get(hf);
            byte[] data;
            if (b == null) {
                data = GgmlQuants.quantize(as, w.toArray(), w.rows(), w.cols());
            } else {
                if (b.rows() != w.rows() || b.cols() != w.cols()) {
                    throw new IllegalArgumentException("tensor '" + hf + "': given [" + b.rows() + ", " + b.cols()
                            + "], the model's is [" + w.rows() + ", " + w.cols() + "]");
                }
                as = b.type();
                fallback = as == type
                        ? null
                        : "its rows of " + w.cols() + " values are not whole " + type + " blocks of "
                                + type.blockSize();
                data = heads == 0 ? b.data() : toInterleaved(b.data(), (int) as.rowSize(b.cols()), heads, c.headDim());
            }
            FloatMatrix back = FloatMatrix.of(
                    w.name(), w.rows(), w.cols(), GgmlQuants.dequantize(as, data, w.rows(), w.cols()), 0);
            writer.addTensor(name, ne, as, data);
            stored.add(new Stored(name, hf, ne, as, fallback, ErrorMetrics.compare(w, back)));
        }
        for (String n : given.keySet()) {
            if (!used.contains(n) || ggufName(n) == null || tensors.get(n).rows() == 1) {
                throw new IllegalArgumentException(
                        source.name() + ": no matrix '" + n + "' to write the given blocks" + " of");
            }
        }
        List<String> skipped = new ArrayList<>();
        for (String n : tensors.keySet()) {
            if (!used.contains(n)) {
                skipped.add(n);
            }
        }
        return new Plan(writer, new Written(stored, skipped));
    }

    /** A file ready to be written and what it will hold. */
    public record Plan(GgufWriter writer, Written written) {

        /** Writes the file atomically. */
        public void write(Path path) throws IOException {
            writer.write(path);
        }

        /** Writes the file split as llama.cpp's {@code gguf-split} splits a model ({@link GgufWriter#writeSplit}). */
        public List<Path> writeSplit(Path path, long maxBytes, int maxTensors) throws IOException {
            return writer.writeSplit(path, maxBytes, maxTensors);
        }
    }

    /**
     * The heads whose rows {@link #toInterleaved} permutes in tensor {@code hf} of a model with {@code c}: a {@code
     * q_proj} or {@code k_proj} weight or bias of a model in Hugging Face's half-split rotary layout; 0 for any other.
     */
    static int rotaryHeads(LlamaConfig c, String hf) {
        if (c.rope() != RopeLayout.HALF_SPLIT) {
            return 0;
        }
        return hf.contains("self_attn.q_proj.") ? c.heads() : hf.contains("self_attn.k_proj.") ? c.kvHeads() : 0;
    }

    /** {@code m}'s values as little-endian float32 bytes (a GGUF F32 tensor's data). */
    static byte[] f32(FloatMatrix m) {
        ByteBuffer b = ByteBuffer.allocate(Float.BYTES * m.rows() * m.cols()).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(m.toArray());
        return b.array();
    }

    /**
     * A {@code llama} GGUF file read back: its configuration (rotary layout {@link RopeLayout#INTERLEAVED}, as GGUF
     * stores it) and every tensor dequantized to float32 under its Hugging Face name ({@code [1, n]} for a vector).
     *
     * @param source the file's name in messages
     */
    public record Loaded(String source, LlamaConfig config, Map<String, FloatMatrix> tensors) {
        public Loaded {
            tensors = Collections.unmodifiableMap(new LinkedHashMap<>(tensors));
        }

        /** The FP32 decoder over the dequantized tensors. */
        public LlamaDecoder decoder(ForkJoinPool pool) {
            return LlamaDecoder.of(source, config, tensors, pool);
        }
    }

    /**
     * Reads a GGUF file of the {@code llama} architecture whose tensors quant4j dequantizes ({@link
     * GgmlType#quantizable()}): its hyperparameters from the {@code llama.*} keys (defaults as llama.cpp's: {@code
     * head_count_kv} the head count, {@code rope.freq_base} 10000, the head size {@code embedding_length /
     * head_count}), the vocabulary size from {@code token_embd.weight}, and every tensor of {@link #ggufName}'s map. A
     * float32 key is read as the shortest decimal that rounds to it, so that {@code 1e-5} written reads back as
     * {@code 1e-5}.
     *
     * @throws MalformedTensorFileException for another architecture, a missing key, partial rotary embedding ({@code
     *     rope.dimension_count} below the head size), a {@code block_count} the file's tensors cannot fill, or a
     *     missing or misshapen tensor
     */
    public static Loaded read(Path path) throws IOException {
        String name = path.getFileName() == null
                ? path.toString()
                : path.getFileName().toString();
        try (Gguf g = Gguf.open(path)) {
            return read(g, name);
        }
    }

    /**
     * Reads GGUF bytes held in memory, as {@link #read(Path)} reads a file.
     *
     * @param source the file's name in messages
     * @throws MalformedTensorFileException as {@link #read(Path)}, and for bytes that are not GGUF
     */
    public static Loaded read(byte[] bytes, String source) {
        try (Gguf g = Gguf.parse(bytes, source)) {
            return read(g, source);
        }
    }

    private static Loaded read(Gguf g, String name) {
        Map<String, GgufValue> m = g.metadata();
        GgufValue arch = m.get("general.architecture");
        if (arch == null || arch.type() != GgufValueType.STRING || !ARCHITECTURE.equals(arch.asString())) {
            throw new MalformedTensorFileException(
                    name + ": general.architecture is " + arch + ", expected \"" + ARCHITECTURE + "\"");
        }
        String a = ARCHITECTURE + ".";
        int dim = integer(name, m, a + "embedding_length", -1);
        int heads = integer(name, m, a + "attention.head_count", -1);
        int headDim = integer(name, m, a + "attention.key_length", dim / Math.max(heads, 1));
        int rot = integer(name, m, a + "rope.dimension_count", headDim);
        if (rot != headDim) {
            throw new MalformedTensorFileException(name + ": rope.dimension_count " + rot + " is not the head size "
                    + headDim + " (quant4j's decoder rotates every dimension)");
        }
        Gguf.TensorInfo embd = g.tensors().stream()
                .filter(t -> t.name().equals("token_embd.weight"))
                .findFirst()
                .orElseThrow(() -> new MalformedTensorFileException(name + ": no tensor 'token_embd.weight'"));
        boolean tied = g.tensors().stream().noneMatch(t -> t.name().equals("output.weight"));
        LlamaConfig config;
        try {
            config = new LlamaConfig(
                    dim,
                    integer(name, m, a + "feed_forward_length", -1),
                    integer(name, m, a + "block_count", -1),
                    heads,
                    integer(name, m, a + "attention.head_count_kv", heads),
                    headDim,
                    (int) Math.min(embd.rows(), Integer.MAX_VALUE),
                    integer(name, m, a + "context_length", -1),
                    number(name, m, a + "rope.freq_base", 10000),
                    number(name, m, a + "attention.layer_norm_rms_epsilon", Double.NaN),
                    RopeLayout.INTERLEAVED,
                    tied);
        } catch (MalformedTensorFileException e) {
            throw e;
        } catch (IllegalArgumentException e) {
            throw new MalformedTensorFileException(name + ": " + e.getMessage(), e);
        }
        // a block has 9 weights, and the file 2 more (embeddings, final norm): a block_count the tensors cannot fill
        // is refused before the names of its blocks are listed
        if (config.layers() > (g.tensors().size() - 2) / 9) {
            throw new MalformedTensorFileException(name + ": " + a + "block_count is " + config.layers() + ", but the"
                    + " file holds " + g.tensors().size() + " tensors (a block has 9, the model 2 more)");
        }
        Map<String, Gguf.TensorInfo> byName = new LinkedHashMap<>();
        for (Gguf.TensorInfo t : g.tensors()) {
            byName.put(t.name(), t);
        }
        Map<String, FloatMatrix> tensors = new LinkedHashMap<>();
        for (String hf : order(config)) {
            Gguf.TensorInfo t = byName.get(ggufName(hf));
            if (t == null) {
                if (hf.endsWith(".bias")) {
                    continue;
                }
                throw new MalformedTensorFileException(name + ": no tensor '" + ggufName(hf) + "'");
            }
            if (t.ne().length > 2 || t.rows() > Integer.MAX_VALUE) {
                throw new MalformedTensorFileException(name + ": tensor '" + t.name() + "' is not a matrix or"
                        + " vector (ne " + Arrays.toString(t.ne()) + ")");
            }
            int rows = (int) t.rows();
            float[] v;
            try {
                v = g.readFloats(t.name());
            } catch (IllegalArgumentException e) {
                throw new MalformedTensorFileException(e.getMessage(), e);
            }
            tensors.put(hf, FloatMatrix.of(hf, rows, v.length / Math.max(rows, 1), v, 0));
        }
        return new Loaded(name, config, tensors);
    }

    private static int integer(String source, Map<String, GgufValue> m, String key, int fallback) {
        GgufValue v = m.get(key);
        if (v == null) {
            if (fallback < 0) {
                throw new MalformedTensorFileException(source + ": no key '" + key + "'");
            }
            return fallback;
        }
        if (!(v.value() instanceof Long) || v.asLong() < 1 || v.asLong() > Integer.MAX_VALUE) {
            throw new MalformedTensorFileException(
                    source + ": '" + key + "' is " + v + ", expected a positive integer");
        }
        return (int) v.asLong();
    }

    private static double number(String source, Map<String, GgufValue> m, String key, double fallback) {
        GgufValue v = m.get(key);
        if (v == null) {
            if (Double.isNaN(fallback)) {
                throw new MalformedTensorFileException(source + ": no key '" + key + "'");
            }
            return fallback;
        }
        if (v.value() instanceof Float f) {
            return Double.parseDouble(Float.toString(f)); // the decimal the writer stored: 1e-5, not 9.99999974738e-6
        }
        if (v.value() instanceof Double d) {
            return d;
        }
        throw new MalformedTensorFileException(source + ": '" + key + "' is " + v + ", expected a float");
    }
}
