package dev.quant4j.cli;

import dev.quant4j.cli.eval.DecoderEval;
import dev.quant4j.ggml.GgmlType;
import dev.quant4j.io.Gguf;
import dev.quant4j.io.GgufValue;
import dev.quant4j.io.GgufValueType;
import dev.quant4j.model.LlamaConfig;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.pipeline.GgufDecoderFile;
import dev.quant4j.pipeline.QuantizedDecoderFile;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.ForkJoinPool;

/**
 * The decoder files {@code quant eval --model} and {@code quant generate} read: the model ({@code --model}: a Hugging
 * Face folder, a llama2.c {@code .bin}, or a GGUF file of llama.cpp's {@code llama} architecture, its tensors
 * dequantized to float32) and a quantized model made elsewhere ({@code --quantized}: a GGUF file, or a quant4j
 * {@code .safetensors} file of {@code quant quantize --model}).
 */
final class DecoderFiles {

    /** The linear weights of a block, by their GGUF names' endings ({@code blk.N.attn_q.weight}, ...). */
    private static final List<String> BLOCK_LINEARS = List.of(
            "attn_q.weight",
            "attn_k.weight",
            "attn_v.weight",
            "attn_output.weight",
            "ffn_gate.weight",
            "ffn_up.weight",
            "ffn_down.weight");

    private DecoderFiles() {}

    static boolean isGguf(Path path) {
        return path.getFileName() != null
                && path.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".gguf");
    }

    private static String name(Path path) {
        return path.getFileName() == null ? path.toString() : path.getFileName().toString();
    }

    /**
     * The model of {@code --model}. A GGUF file whose block linears are not all F32, F16 or BF16 is legal, and noted
     * on {@code err} (prefixed {@code command}): its dequantized values are the reference.
     */
    static LlamaDecoder readModel(Path path, ForkJoinPool pool, PrintWriter err, String command) throws IOException {
        if (isGguf(path)) {
            GgufDecoderFile.Loaded loaded = GgufDecoderFile.read(path);
            Linears linears = linears(path);
            TreeSet<String> quantized = new TreeSet<>();
            for (GgmlType t : linears.types().keySet()) {
                if (t != GgmlType.F32 && t != GgmlType.F16 && t != GgmlType.BF16) {
                    quantized.add(t.ggmlName());
                }
            }
            if (!quantized.isEmpty()) {
                err.println(command + ": " + name(path) + " stores block linears as " + String.join(", ", quantized)
                        + ": the reference model is their dequantized values, not the original float model");
            }
            return loaded.decoder(pool);
        }
        if (!Files.isDirectory(path) && !name(path).endsWith(".bin")) {
            throw new IllegalArgumentException(path + ": expected a llama2.c checkpoint (.bin), a GGUF llama model"
                    + " (.gguf) or a Hugging Face model folder");
        }
        return LlamaDecoder.read(path, pool);
    }

    /**
     * The quantized model of {@code --quantized}, checked against the model {@code fp32} (named {@code modelName}):
     * one architecture, the same shapes and vocabulary.
     */
    static DecoderEval.Candidate readQuantized(Path path, LlamaDecoder fp32, String modelName, ForkJoinPool pool)
            throws IOException {
        String file = name(path);
        LlamaDecoder model;
        DecoderEval.Row row;
        if (isGguf(path)) {
            GgufDecoderFile.Loaded loaded = GgufDecoderFile.read(path);
            requireSameShape(fp32.config(), modelName, loaded.config(), file);
            model = loaded.decoder(pool);
            Linears l = linears(path);
            GgmlType main = l.types().entrySet().stream()
                    .max(Map.Entry.comparingByValue())
                    .orElseThrow()
                    .getKey();
            row = new DecoderEval.Row(
                    file,
                    "gguf",
                    bits(main),
                    main.blockSize() == 1 ? 0 : main.blockSize(),
                    8.0 * l.bytes() / l.elements(),
                    l.bytes(),
                    main.ggmlName(),
                    null);
        } else if (name(path).endsWith(".safetensors")) {
            QuantizedDecoderFile.Loaded loaded = QuantizedDecoderFile.read(path);
            requireSameShape(fp32.config(), modelName, loaded.config(), file);
            model = loaded.model(pool);
            List<QuantizedWeight> weights =
                    List.copyOf(loaded.content().weights().values());
            if (weights.isEmpty()) {
                throw new IllegalArgumentException(
                        file + ": no quantized tensor (a quant4j decoder file holds its" + " quantized linears)");
            }
            long bytes = 0;
            long elements = 0;
            for (QuantizedWeight w : weights) {
                bytes += w.storageBytes();
                elements += (long) w.rows() * w.cols();
            }
            TreeSet<String> methods = new TreeSet<>(loaded.content().methods().values());
            QuantizedWeight first = weights.get(0);
            int group = switch (first.scheme()) {
                case LinearScheme s -> s.groupSize();
                case CodebookScheme s -> s.blockSize();
            };
            row = new DecoderEval.Row(
                    file,
                    methods.size() == 1 ? methods.first().replace('-', '_') : "quant4j",
                    first.scheme().bits(),
                    group,
                    8.0 * bytes / elements,
                    bytes,
                    null,
                    null);
        } else {
            throw new IllegalArgumentException("--quantized " + path + ": expected a GGUF llama model (.gguf) or a"
                    + " quant4j decoder file (.safetensors, from quant quantize --model)");
        }
        return new DecoderEval.Candidate(model, row);
    }

    /**
     * Refuses two models that are not one architecture: the first field that differs, with both values. The rotary
     * layout may differ (a GGUF file keeps the interleaved one, its q/k rows permuted to match), and so may the context
     * length, epsilon and rotary base (noted by neither: they are the converter's business).
     */
    static void requireSameShape(LlamaConfig a, String aName, LlamaConfig b, String bName) {
        Map<String, int[]> fields = new LinkedHashMap<>();
        fields.put("vocabulary size (token_embd.weight rows, vocab_size)", new int[] {a.vocabSize(), b.vocabSize()});
        fields.put("embedding length (dim)", new int[] {a.dim(), b.dim()});
        fields.put("feed-forward length (hidden_dim)", new int[] {a.hiddenDim(), b.hiddenDim()});
        fields.put("block count (layers)", new int[] {a.layers(), b.layers()});
        fields.put("head count", new int[] {a.heads(), b.heads()});
        fields.put("key/value head count", new int[] {a.kvHeads(), b.kvHeads()});
        fields.put("head size", new int[] {a.headDim(), b.headDim()});
        for (Map.Entry<String, int[]> f : fields.entrySet()) {
            int[] v = f.getValue();
            if (v[0] != v[1]) {
                throw new IllegalArgumentException(bName + " is not a quantization of " + aName + ": its " + f.getKey()
                        + " is " + v[1] + ", " + aName + "'s " + v[0]);
            }
        }
    }

    /**
     * Why {@code model} gives no tokenizer, for the messages that ask for {@code --tokenizer}: a folder without one, a
     * checkpoint without one, or a GGUF file whose vocabulary quant4j does not run.
     */
    static String noTokenizerReason(Path model) {
        if (Files.isDirectory(model)) {
            return model + " holds no tokenizer.json";
        }
        if (!isGguf(model) || !Files.isRegularFile(model)) {
            return model + " is not a Hugging Face folder";
        }
        try (Gguf g = Gguf.open(model)) {
            GgufValue kind = g.metadata().get("tokenizer.ggml.model");
            GgufValue tokens = g.metadata().get("tokenizer.ggml.tokens");
            if (kind == null || tokens == null || tokens.type() != GgufValueType.ARRAY) {
                return model + " carries no vocabulary";
            }
            List<Object> list = tokens.asArray().values();
            int n = list.size();
            if (n > 259 && ("<tok_" + (n - 1) + ">").equals(list.get(n - 1))) {
                return model + " carries quant4j's placeholder vocabulary, not a tokenizer: it runs on token ids";
            }
            return model + " carries its vocabulary as tokenizer.ggml.* keys (" + kind.asString() + ", " + n
                    + " tokens), which quant4j does not run: it runs the tokenizer.json they came from";
        } catch (IOException | IllegalArgumentException e) {
            return model + " is not a Hugging Face folder";
        }
    }

    /** The block linears of a GGUF file: elements per type, bytes and elements in all. */
    private record Linears(Map<GgmlType, Long> types, long bytes, long elements) {}

    private static Linears linears(Path path) throws IOException {
        Map<GgmlType, Long> types = new LinkedHashMap<>();
        long bytes = 0;
        long elements = 0;
        try (Gguf g = Gguf.open(path)) {
            for (Gguf.TensorInfo t : g.tensors()) {
                if (t.name().startsWith("blk.")
                        && BLOCK_LINEARS.stream().anyMatch(s -> t.name().endsWith("." + s))) {
                    types.merge(t.type(), t.elements(), Long::sum);
                    bytes += t.bytes();
                    elements += t.elements();
                }
            }
        }
        return new Linears(types, bytes, elements);
    }

    /** Bits of a value of {@code t}'s codes (16 or 32 for a float type). */
    private static int bits(GgmlType t) {
        return switch (t) {
            case F32 -> 32;
            case F16, BF16 -> 16;
            case Q4_0, Q4_1, Q4_K -> 4;
            case Q5_0, Q5_1, Q5_K -> 5;
            case Q6_K -> 6;
            case Q8_0 -> 8;
            default -> throw new IllegalArgumentException("no bit count for GGUF type " + t);
        };
    }
}
