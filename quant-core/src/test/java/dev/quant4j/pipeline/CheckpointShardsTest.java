package dev.quant4j.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.internal.Json;
import dev.quant4j.io.DType;
import dev.quant4j.io.SafeTensors;
import dev.quant4j.io.SafeTensorsCheckpoint;
import dev.quant4j.io.SafeTensorsWriter;
import dev.quant4j.pipeline.CheckpointQuantizer.Choice;
import dev.quant4j.pipeline.CheckpointQuantizer.Method;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.tensor.Gaussian;
import dev.quant4j.testing.Pools;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --max-shard-size}: the output's shards are filled as huggingface_hub fills them ({@code
 * split_state_dict_into_shards_factory}), named as it names them, listed in an index; the folder reads back and
 * dequantizes to the values of the unsharded output.
 */
class CheckpointShardsTest {

    @TempDir
    Path dir;

    @Test
    void greedyFillInOrderAsHuggingFaceHubDocumentsIt() {
        // huggingface_hub's own example: [6GB, 6GB, 2GB, 6GB, 2GB, 2GB] with a 10GB limit gives [6], [6+2], [6+2+2]
        assertThat(CheckpointQuantizer.shards(List.of(6L, 6L, 2L, 6L, 2L, 2L), 10))
                .isEqualTo(List.of(List.of(0), List.of(1, 2), List.of(3, 4, 5)));
        // a tensor over the limit goes alone into a shard, listed when it is met; the shard being filled stays open
        assertThat(CheckpointQuantizer.shards(List.of(2L, 2L, 10L, 1L, 3L), 5))
                .isEqualTo(List.of(List.of(2), List.of(0, 1, 3), List.of(4)));
        // exactly the limit still fits; everything under it is one shard
        assertThat(CheckpointQuantizer.shards(List.of(3L, 2L, 5L), 5)).isEqualTo(List.of(List.of(0, 1), List.of(2)));
        assertThat(CheckpointQuantizer.shards(List.of(1L, 1L), 5)).isEqualTo(List.of(List.of(0, 1)));
        assertThat(CheckpointQuantizer.shardName(0, 1)).isEqualTo("model.safetensors");
        assertThat(CheckpointQuantizer.shardName(1, 12)).isEqualTo("model-00002-of-00012.safetensors");
    }

    private static final CheckpointQuantizer.Selector LINEARS =
            e -> e.shape().length == 2 && !e.name().startsWith("embed") ? Choice.QUANTIZE : Choice.COPY;

    /** Five weights [64, 128] of the same size, an embedding larger than two of them, and a norm. */
    private Path model() throws IOException {
        SafeTensorsWriter w = new SafeTensorsWriter();
        for (int i = 0; i < 5; i++) {
            w.addF32("w" + i + ".weight", new long[] {64, 128}, Gaussian.samples(i, 64 * 128, 0.05));
        }
        w.addF32("embed.weight", new long[] {100, 128}, Gaussian.samples(10, 100 * 128, 1.0));
        w.addF32("norm.weight", new long[] {128}, Gaussian.samples(11, 128, 1.0));
        Path in = dir.resolve("model.safetensors");
        w.write(in);
        return in;
    }

    @Test
    void shardsAreFilledInOrderListedInTheIndexAndReadBackToTheUnshardedValues() throws Exception {
        Path in = model();
        Method method = Method.rtn(LinearScheme.asym(4, 32));
        Path single = dir.resolve("single.safetensors");
        try (SafeTensorsCheckpoint c = SafeTensorsCheckpoint.open(in)) {
            new CheckpointQuantizer(method, LINEARS, Pools.ONE).quantize(c, single, false, (t, b) -> {});
        }
        // one weight's bytes: all its parts (codes, scales, zeros), which stay together in one shard
        long weight = 0;
        long total = 0;
        try (SafeTensors st = SafeTensors.open(single)) {
            for (SafeTensors.Entry e : st.entries().values()) {
                total += e.end() - e.begin();
                if (e.name().startsWith("w0.")) {
                    weight += e.end() - e.begin();
                }
            }
        }
        long embed = 4L * 100 * 128;
        assertThat(embed).isGreaterThan(2 * weight + 100);
        Path out = dir.resolve("sharded");
        CheckpointQuantizer.Summary s;
        try (SafeTensorsCheckpoint c = SafeTensorsCheckpoint.open(in)) {
            s = new CheckpointQuantizer(method, LINEARS, Pools.TWO, 700)
                    .quantize(c, out, false, 2 * weight + 100, (t, b) -> {});
        }
        // w0 w1 | w2 w3 | the embedding alone (over the limit) | w4 and the norm (the open shard, after it)
        List<List<String>> expected = List.of(
                List.of("w0.weight", "w1.weight"),
                List.of("w2.weight", "w3.weight"),
                List.of("embed.weight"),
                List.of("norm.weight", "w4.weight"));
        assertThat(s.files())
                .containsExactly(
                        "model-00001-of-00004.safetensors",
                        "model-00002-of-00004.safetensors",
                        "model-00003-of-00004.safetensors",
                        "model-00004-of-00004.safetensors",
                        SafeTensorsCheckpoint.INDEX);
        Map<?, ?> index = (Map<?, ?>) Json.parse(Files.readString(out.resolve(SafeTensorsCheckpoint.INDEX)));
        Map<?, ?> weightMap = (Map<?, ?>) index.get("weight_map");
        assertThat(((Number) ((Map<?, ?>) index.get("metadata")).get("total_size")).longValue())
                .isEqualTo(total);
        for (int k = 0; k < 4; k++) {
            String file = s.files().get(k);
            try (SafeTensors st = SafeTensors.open(out.resolve(file))) {
                TreeSet<String> tensors = new TreeSet<>();
                long bytes = 0;
                for (SafeTensors.Entry e : st.entries().values()) {
                    tensors.add(e.name().substring(0, e.name().indexOf('.')) + ".weight");
                    bytes += e.end() - e.begin();
                    assertThat(weightMap.get(e.name())).as(e.name()).isEqualTo(file);
                }
                assertThat(new ArrayList<>(tensors)).isEqualTo(expected.get(k));
                if (k != 2) {
                    assertThat(bytes).isLessThanOrEqualTo(2 * weight + 100);
                }
            }
        }
        // the folder reads back, and dequantizes to the unsharded output's values
        Path backSharded = dir.resolve("back-sharded");
        Path backSingle = dir.resolve("back-single.safetensors");
        try (SafeTensorsCheckpoint c = SafeTensorsCheckpoint.open(out)) {
            assertThat(c.indexed()).isTrue();
            new CheckpointDequantizer(DType.F32, Pools.TWO).dequantize(c, backSharded, false, (t, b) -> {});
        }
        try (SafeTensorsCheckpoint c = SafeTensorsCheckpoint.open(single)) {
            new CheckpointDequantizer(DType.F32, Pools.ONE).dequantize(c, backSingle, false, (t, b) -> {});
        }
        try (SafeTensorsCheckpoint a = SafeTensorsCheckpoint.open(backSharded);
                SafeTensors b = SafeTensors.open(backSingle)) {
            int n = 0;
            for (SafeTensorsCheckpoint.Shard shard : a.shards()) {
                for (String name : shard.file().names()) {
                    assertThat(shard.file().readF32(name)).as(name).isEqualTo(b.readF32(name));
                    n++;
                }
            }
            assertThat(n).isEqualTo(b.names().size()).isEqualTo(7);
        }
    }
}
