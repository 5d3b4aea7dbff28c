package dev.quant4j.bench;

import dev.quant4j.io.DType;
import dev.quant4j.io.SafeTensorsCheckpoint;
import dev.quant4j.io.SafeTensorsStreamWriter;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * Writes a Llama-shaped checkpoint of random BF16 weights in the Hugging Face Hub's layout (shards of at most 10 GB as
 * transformers' {@code save_pretrained} cuts them, {@code model.safetensors.index.json}, {@code config.json}), for
 * measuring quant4j on models of real size without downloading one:
 *
 * <pre>
 * java -cp quant-bench/target/benchmarks.jar dev.quant4j.bench.SyntheticCheckpoint OUT_DIR [7b|mid|tiny] [SEED]
 * </pre>
 *
 * <p>{@code 7b} has Llama-2-7B's shapes (32 layers, hidden 4096, MLP 11008, vocabulary 32000; 6.74 billion weights in
 * two shards of 9.98 GB and 3.50 GB); {@code mid} 2 layers of hidden 1024, MLP 2816, 8 heads; {@code tiny} 2 layers of
 * hidden 256. Weights are Gaussian-like (a sum of uniforms) with standard deviation 0.02, norms are 1; the same seed
 * gives the same files. Rows are generated and written in parallel, streamed: the heap holds a few row blocks.
 */
public final class SyntheticCheckpoint {

    private record Shape(int layers, int hidden, int mlp, int vocab, int heads, int kvHeads) {}

    private static final long MAX_SHARD = 10_000_000_000L;

    private SyntheticCheckpoint() {}

    public static void main(String[] args) throws IOException {
        if (args.length < 1) {
            System.err.println("usage: SyntheticCheckpoint OUT_DIR [7b|mid|tiny] [SEED]");
            System.exit(2);
        }
        Path out = Path.of(args[0]);
        Shape shape = switch (args.length > 1 ? args[1] : "7b") {
            case "7b" -> new Shape(32, 4096, 11008, 32000, 32, 32);
            case "mid" -> new Shape(2, 1024, 2816, 32000, 8, 8);
            case "tiny" -> new Shape(2, 256, 688, 1000, 4, 4);
            default -> throw new IllegalArgumentException("unknown shape " + args[1] + " (7b, mid or tiny)");
        };
        long seed = args.length > 2 ? Long.parseLong(args[2]) : 1;
        Files.createDirectories(out);
        long start = System.nanoTime();
        List<SafeTensorsStreamWriter.Spec> all = tensors(shape);
        List<List<SafeTensorsStreamWriter.Spec>> shards = new ArrayList<>();
        List<SafeTensorsStreamWriter.Spec> current = new ArrayList<>();
        long size = 0;
        for (SafeTensorsStreamWriter.Spec s : all) {
            if (!current.isEmpty() && size + s.bytes() > MAX_SHARD) {
                shards.add(current);
                current = new ArrayList<>();
                size = 0;
            }
            current.add(s);
            size += s.bytes();
        }
        shards.add(current);
        Map<String, String> weightMap = new LinkedHashMap<>();
        long total = 0;
        for (int i = 0; i < shards.size(); i++) {
            String name = String.format(Locale.ROOT, "model-%05d-of-%05d.safetensors", i + 1, shards.size());
            List<SafeTensorsStreamWriter.Spec> specs = shards.get(i);
            try (SafeTensorsStreamWriter w =
                    SafeTensorsStreamWriter.create(out.resolve(name), specs, Map.of("format", "pt"))) {
                for (int t = 0; t < specs.size(); t++) {
                    fill(w, specs.get(t), seed * 1_000_003L + all.indexOf(specs.get(t)));
                    weightMap.put(specs.get(t).name(), name);
                    total += specs.get(t).bytes();
                }
                w.finish();
                System.err.printf(Locale.ROOT, "%s: %d tensors, %.2f GB%n", name, specs.size(), w.size() / 1e9);
            }
        }
        SafeTensorsCheckpoint.writeIndex(out, total, weightMap);
        Files.writeString(
                out.resolve("config.json"),
                String.format(
                        Locale.ROOT,
                        "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"hidden_size\":%d,"
                                + "\"intermediate_size\":%d,\"num_hidden_layers\":%d,\"num_attention_heads\":%d,"
                                + "\"num_key_value_heads\":%d,\"vocab_size\":%d,\"rms_norm_eps\":1e-05,"
                                + "\"rope_theta\":10000.0,\"max_position_embeddings\":4096,\"hidden_act\":\"silu\","
                                + "\"tie_word_embeddings\":false,\"torch_dtype\":\"bfloat16\"}%n",
                        shape.hidden(),
                        shape.mlp(),
                        shape.layers(),
                        shape.heads(),
                        shape.kvHeads(),
                        shape.vocab()));
        System.err.printf(
                Locale.ROOT,
                "wrote %s: %.2f GB of BF16 tensors in %.1f s%n",
                out,
                total / 1e9,
                (System.nanoTime() - start) * 1e-9);
    }

    private static List<SafeTensorsStreamWriter.Spec> tensors(Shape s) {
        List<SafeTensorsStreamWriter.Spec> t = new ArrayList<>();
        int kv = s.hidden() / s.heads() * s.kvHeads();
        t.add(spec("model.embed_tokens.weight", s.vocab(), s.hidden()));
        for (int l = 0; l < s.layers(); l++) {
            String p = "model.layers." + l + ".";
            t.add(spec(p + "self_attn.q_proj.weight", s.hidden(), s.hidden()));
            t.add(spec(p + "self_attn.k_proj.weight", kv, s.hidden()));
            t.add(spec(p + "self_attn.v_proj.weight", kv, s.hidden()));
            t.add(spec(p + "self_attn.o_proj.weight", s.hidden(), s.hidden()));
            t.add(spec(p + "mlp.gate_proj.weight", s.mlp(), s.hidden()));
            t.add(spec(p + "mlp.up_proj.weight", s.mlp(), s.hidden()));
            t.add(spec(p + "mlp.down_proj.weight", s.hidden(), s.mlp()));
            t.add(new SafeTensorsStreamWriter.Spec(p + "input_layernorm.weight", DType.BF16, new long[] {s.hidden()}));
            t.add(new SafeTensorsStreamWriter.Spec(
                    p + "post_attention_layernorm.weight", DType.BF16, new long[] {s.hidden()}));
        }
        t.add(new SafeTensorsStreamWriter.Spec("model.norm.weight", DType.BF16, new long[] {s.hidden()}));
        t.add(spec("lm_head.weight", s.vocab(), s.hidden()));
        return t;
    }

    private static SafeTensorsStreamWriter.Spec spec(String name, int rows, int cols) {
        return new SafeTensorsStreamWriter.Spec(name, DType.BF16, new long[] {rows, cols});
    }

    /** Random BF16 rows (norms: 1.0), generated block by block in parallel from a per-block seed. */
    private static void fill(SafeTensorsStreamWriter w, SafeTensorsStreamWriter.Spec s, long seed) {
        long[] shape = s.shape();
        boolean norm = shape.length == 1;
        long elements = norm ? shape[0] : shape[0] * shape[1];
        int block = 1 << 20;
        int blocks = (int) ((elements + block - 1) / block);
        IntStream.range(0, blocks).parallel().forEach(b -> {
            int n = (int) Math.min(block, elements - (long) b * block);
            ByteBuffer bb = ByteBuffer.allocate(2 * n).order(ByteOrder.LITTLE_ENDIAN);
            long x = seed * 0x9E3779B97F4A7C15L + b * 0xBF58476D1CE4E5B9L + 1;
            for (int i = 0; i < n; i++) {
                float v;
                if (norm) {
                    v = 1f;
                } else {
                    // xorshift64*, four uniforms summed: mean 0, variance 4/12 before scaling
                    float sum = 0;
                    for (int k = 0; k < 4; k++) {
                        x ^= x >>> 12;
                        x ^= x << 25;
                        x ^= x >>> 27;
                        sum += ((x * 0x2545F4914F6CDD1DL) >>> 40) * (1f / (1 << 24)) - 0.5f;
                    }
                    v = sum * 0.02f * 1.7320508f;
                }
                bb.putShort((short) (Float.floatToRawIntBits(v) >>> 16));
            }
            bb.flip();
            try {
                w.write(s.name(), (long) b * block * 2, bb);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
    }
}
