package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.io.DType;
import dev.quant4j.io.QuantizedSafeTensors;
import dev.quant4j.io.SafeTensorsCheckpoint;
import dev.quant4j.io.SafeTensorsWriter;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code quant quantize} of a Hugging Face folder with index-listed shards: streamed into a folder of the same shape. */
class QuantizeCheckpointTest {

    @TempDir
    Path dir;

    private final FloatMatrix q = Gaussian.matrix("model.layers.0.self_attn.q_proj.weight", 3, 64, 128, 0.02);
    private final FloatMatrix up = Gaussian.matrix("model.layers.0.mlp.up_proj.weight", 4, 96, 64, 0.02);
    private final FloatMatrix odd = Gaussian.matrix("model.layers.0.mlp.down_proj.weight", 5, 64, 96, 0.02);

    private Path folder() throws Exception {
        Path hf = Files.createDirectory(dir.resolve("hf"));
        FloatMatrix embed = Gaussian.matrix("model.embed_tokens.weight", 6, 32, 64, 0.02);
        new SafeTensorsWriter()
                .addF32(embed.name(), new long[] {32, 64}, embed.toArray())
                .addF32(q.name(), new long[] {64, 128}, q.toArray())
                .write(hf.resolve("model-00001-of-00002.safetensors"));
        new SafeTensorsWriter()
                .addF32(up.name(), new long[] {96, 64}, up.toArray())
                .addF32(odd.name(), new long[] {64, 96}, odd.toArray())
                .addF32("model.norm.weight", new long[] {64}, new float[64])
                .write(hf.resolve("model-00002-of-00002.safetensors"));
        Files.writeString(
                hf.resolve(SafeTensorsCheckpoint.INDEX),
                "{\"metadata\":{\"total_size\":0},\"weight_map\":{"
                        + "\"model.embed_tokens.weight\":\"model-00001-of-00002.safetensors\","
                        + "\"" + q.name() + "\":\"model-00001-of-00002.safetensors\","
                        + "\"" + up.name() + "\":\"model-00002-of-00002.safetensors\","
                        + "\"" + odd.name() + "\":\"model-00002-of-00002.safetensors\","
                        + "\"model.norm.weight\":\"model-00002-of-00002.safetensors\"}}",
                StandardCharsets.UTF_8);
        Files.writeString(hf.resolve("config.json"), "{\"model_type\":\"llama\"}");
        return hf;
    }

    @Test
    void aShardedFolderBecomesAQuantizedFolderWithTheSameShardsWhateverTheThreads() throws Exception {
        Path hf = folder();
        Map<Integer, byte[]> firstShard = new HashMap<>();
        for (int threads : new int[] {1, 2}) {
            Path out = dir.resolve("q" + threads);
            QuantCliTest.Result r = QuantCliTest.run(
                    "quantize",
                    "--method",
                    "rtn",
                    "--group-size",
                    "64",
                    "--in",
                    hf.toString(),
                    "--out",
                    out.toString(),
                    "--threads",
                    String.valueOf(threads));
            assertThat(r.code()).as(r.err()).isZero();
            assertThat(r.out())
                    .contains(q.name() + " [64 x 128] linear 4-bit asym g64: 4.625 bits/weight")
                    .contains("wrote " + out + " (2 quantized, 3 unchanged, of which 2 kept unquantized:"
                            + " model.embed_tokens.weight, " + odd.name() + ")")
                    .contains("4 files (model-00001-of-00002.safetensors, model-00002-of-00002.safetensors,"
                            + " model.safetensors.index.json, config.json): 4.625 bits per quantized weight");
            assertThat(r.err())
                    .contains("quant: kept 'model.embed_tokens.weight' unquantized: an embedding")
                    .contains("quant: kept '" + odd.name() + "' unquantized: group size 64 does not divide its 96");
            Map<String, QuantizedWeight> read = new HashMap<>();
            for (String shard : List.of("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")) {
                read.putAll(QuantizedSafeTensors.read(out.resolve(shard)).weights());
            }
            assertThat(read).doesNotContainKey(odd.name());
            for (FloatMatrix w : List.of(q, up)) {
                assertThat(read.get(w.name())).isEqualTo(new RtnQuantizer(LinearScheme.asym(4, 64)).quantize(w));
            }
            assertThat(Files.readString(out.resolve("config.json"))).isEqualTo("{\"model_type\":\"llama\"}");
            firstShard.put(threads, Files.readAllBytes(out.resolve("model-00002-of-00002.safetensors")));
        }
        assertThat(firstShard.get(2)).isEqualTo(firstShard.get(1));

        // inspect reads every shard of either folder
        QuantCliTest.Result in = QuantCliTest.run("inspect", hf.toString());
        assertThat(in.code()).as(in.err()).isZero();
        assertThat(in.out())
                .contains("total: 5 tensors, " + (32 * 64 + 64 * 128 + 96 * 64 + 64 * 96 + 64) + " parameters");
        QuantCliTest.Result quantized =
                QuantCliTest.run("inspect", dir.resolve("q1").toString());
        assertThat(quantized.code()).as(quantized.err()).isZero();
        assertThat(quantized.out())
                .containsPattern(java.util.regex.Pattern.quote(q.name())
                        + " +int4 +\\[64, 128\\] .* 4\\.625 +linear 4-bit asym g64 \\(rtn\\)");

        // dequantized again into a folder of the same shape
        Path deq = dir.resolve("deq");
        QuantCliTest.Result r =
                QuantCliTest.run("dequantize", "--in", dir.resolve("q1").toString(), "--out", deq.toString());
        assertThat(r.code()).as(r.err()).isZero();
        try (SafeTensorsCheckpoint c = SafeTensorsCheckpoint.open(deq)) {
            assertThat(c.shards()).hasSize(2);
            assertThat(c.shards().get(1).file().readMatrix(up.name()).toArray())
                    .containsExactly(new RtnQuantizer(LinearScheme.asym(4, 64))
                            .quantize(up)
                            .dequantize()
                            .toArray());
            assertThat(c.shards().get(1).file().entry("model.norm.weight").dtype())
                    .isEqualTo(DType.F32);
        }
    }

    @Test
    void badFoldersAndOutputsAreRefusedBeforeAnyWork() throws Exception {
        Path hf = folder();
        QuantCliTest.Result intoFile = QuantCliTest.run(
                "quantize",
                "--method",
                "rtn",
                "--in",
                hf.toString(),
                "--out",
                dir.resolve("q.safetensors").toString());
        assertThat(intoFile.code()).isEqualTo(2);
        assertThat(intoFile.err()).contains("is a folder of shards, so --out is a folder too");
        QuantCliTest.Result inside = QuantCliTest.run(
                "quantize",
                "--method",
                "rtn",
                "--in",
                hf.toString(),
                "--out",
                hf.resolve("q").toString());
        assertThat(inside.err()).contains("is inside the input folder");
        Files.delete(hf.resolve("model-00002-of-00002.safetensors"));
        QuantCliTest.Result missing = QuantCliTest.run(
                "quantize",
                "--method",
                "nf4",
                "--in",
                hf.toString(),
                "--out",
                dir.resolve("q").toString());
        assertThat(missing.code()).isEqualTo(2);
        assertThat(missing.err()).contains("model-00002-of-00002.safetensors");
        try (Stream<Path> s = Files.list(dir)) {
            assertThat(s.map(p -> p.getFileName().toString()).toList()).containsExactly("hf");
        }
    }
}
