package dev.quant4j.pipeline;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.quant4j.ggml.GgmlGptq;
import dev.quant4j.ggml.GgmlType;
import dev.quant4j.io.SafeTensorsWriter;
import dev.quant4j.model.HuggingFaceLlama;
import dev.quant4j.model.TokenSampler;
import dev.quant4j.pipeline.GgufDecoderFile.Stored;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.testing.Pools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ForkJoinPool;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A Hugging Face folder streamed into GGUF ({@link GgufDecoderStream}) is the file {@link GgufDecoderFile#plan} writes
 * from the model in memory, byte for byte: stories260K as a sharded BF16 folder (half-split q/k rows, the 172-wide
 * MLP rows that fall back), and as one F32 file with q/k/v biases.
 */
class GgufDecoderStreamTest {

    @TempDir
    static Path dir;

    static Path bf16;
    static Path withBias;

    @BeforeAll
    static void folders() throws Exception {
        bf16 = StreamedDecoderTest.shardedBf16(dir.resolve("bf16"));
        List<Map.Entry<String, FloatMatrix>> all = HuggingFaceLlamaFixture.tensors();

        withBias = dir.resolve("bias");
        Files.createDirectories(withBias);
        SafeTensorsWriter w = new SafeTensorsWriter();
        Random r = new Random(11);
        for (Map.Entry<String, FloatMatrix> e : all) {
            FloatMatrix m = e.getValue();
            w.addF32(e.getKey(), m.rows() == 1 ? new long[] {m.cols()} : new long[] {m.rows(), m.cols()}, m.toArray());
            if (e.getKey().endsWith("_proj.weight")
                    && e.getKey().contains("self_attn.")
                    && !e.getKey().contains("o_proj")) {
                float[] b = new float[m.rows()];
                for (int i = 0; i < b.length; i++) {
                    b[i] = (float) r.nextGaussian();
                }
                w.addF32(e.getKey().replace(".weight", ".bias"), new long[] {b.length}, b);
            }
        }
        w.addF32("model.layers.0.self_attn.rotary_emb.inv_freq", new long[] {4}, new float[] {1, 2, 3, 4});
        w.write(withBias.resolve("model.safetensors"));
        Files.writeString(withBias.resolve("config.json"), HuggingFaceLlamaFixture.CONFIG);
    }

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        for (String folder : List.of("bf16", "bias")) {
            for (GgmlType t : List.of(GgmlType.F32, GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.Q6_K)) {
                out.add(Arguments.of(folder, t));
            }
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void theStreamIsTheFileThePlanWritesAndItsFiguresAgree(String folder, GgmlType type) throws Exception {
        Path in = folder.equals("bf16") ? bf16 : withBias;
        Path expected = dir.resolve(folder + "-" + type + "-plan.gguf");
        GgufDecoderFile.Plan inMemory = GgufDecoderFile.plan(QuantizedDecoderFile.readSource(in), type, false, null);
        inMemory.write(expected);
        byte[] want = Files.readAllBytes(expected);
        for (int threads : new int[] {1, 3}) {
            // blocks of one to a few rows, so that permuted matrices are read across heads
            for (int blockElements : new int[] {64, 1 << 18}) {
                Path got = dir.resolve(folder + "-" + type + "-" + threads + "-" + blockElements + ".gguf");
                ForkJoinPool pool = new ForkJoinPool(threads);
                try (HuggingFaceLlama.Checkpoint model = HuggingFaceLlama.open(in, pool)) {
                    GgufDecoderStream.Plan plan = GgufDecoderStream.plan(model, type, false, null);
                    GgufQuantizer.Summary summary = new GgufQuantizer(
                                    GgufQuantizer.Method.rtn(type), pool, blockElements)
                            .write(plan.metadata(), plan.items(), got, null, (name, bytes) -> {});
                    assertThat(Files.readAllBytes(got))
                            .as("threads %d, blocks of %d", threads, blockElements)
                            .isEqualTo(want);
                    assertThat(plan.skipped()).isEqualTo(inMemory.written().skipped());
                    List<Stored> stored = plan.stored(summary);
                    List<Stored> planned = inMemory.written().tensors();
                    assertThat(stored).hasSameSizeAs(planned);
                    for (int i = 0; i < stored.size(); i++) {
                        Stored s = stored.get(i);
                        Stored p = planned.get(i);
                        assertThat(List.of(s.name(), s.source(), s.type()))
                                .isEqualTo(List.of(p.name(), p.source(), p.type()));
                        assertThat(s.ne()).isEqualTo(p.ne());
                        assertThat(s.fallback()).isEqualTo(p.fallback());
                        if (p.error() == null) {
                            assertThat(s.error()).isNull();
                        } else {
                            // the same sums, added per block instead of per weight
                            assertThat(s.error().mse()).isCloseTo(p.error().mse(), withRelative(1e-9));
                            assertThat(s.error().sqnrDb()).isCloseTo(p.error().sqnrDb(), withAbsolute(1e-9));
                            assertThat(s.error().maxAbs()).isEqualTo(p.error().maxAbs());
                        }
                    }
                } finally {
                    pool.shutdown();
                }
                Files.delete(got);
            }
        }
    }

    /**
     * GPTQ on the folder read block by block, each block linear written as its blocks are made: the file GPTQ's blocks
     * give the in-memory plan.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("gptqTypes")
    void gptqStreamedIsTheFileOfTheGivenBlocks(GgmlType type, GgmlGptq.Order order) throws Exception {
        QuantizedDecoderFile.Source source = QuantizedDecoderFile.readSource(bf16);
        List<int[]> calibration = TokenSampler.sample(source.decoder(Pools.TWO), 4, 32, 1, 1.0, 3);
        GgufDecoderGptq.Result blocks = new GgufDecoderGptq(type, 0.01, order, Pools.TWO)
                .quantize(source.decoder(Pools.TWO), calibration, null);
        Path expected = dir.resolve("gptq-" + type + "-" + order + "-plan.gguf");
        GgufDecoderFile.plan(source, type, false, null, blocks.linears()).write(expected);
        Path got = dir.resolve("gptq-" + type + "-" + order + "-stream.gguf");
        List<DecoderQuantizer.LayerReport> reports = new ArrayList<>();
        List<Integer> done = new ArrayList<>();
        try (HuggingFaceLlama.Checkpoint model = HuggingFaceLlama.open(bf16, Pools.TWO)) {
            GgufDecoderStream.Plan plan = GgufDecoderStream.plan(model, type, false, null);
            GgufDecoderStream.writeGptq(
                    plan,
                    new GgufDecoderGptq(type, 0.01, order, Pools.TWO),
                    model,
                    calibration,
                    new GgufQuantizer(GgufQuantizer.Method.rtn(type), new ForkJoinPool(1), 1000),
                    got,
                    null,
                    (name, bytes) -> {},
                    (b, stored, layers) -> {
                        done.add(b);
                        reports.addAll(layers);
                    });
        }
        assertThat(Files.readAllBytes(got)).isEqualTo(Files.readAllBytes(expected));
        assertThat(done).containsExactly(0, 1, 2, 3, 4);
        assertThat(reports).isEqualTo(blocks.layers());
    }

    static Stream<Arguments> gptqTypes() {
        return Stream.of(
                Arguments.of(GgmlType.Q4_0, GgmlGptq.Order.COLUMNS),
                Arguments.of(GgmlType.Q4_1, GgmlGptq.Order.ACT_ORDER),
                Arguments.of(GgmlType.Q8_0, GgmlGptq.Order.COLUMNS));
    }

    /** A calibration GPTQ cannot run stops the writer too: the error is GPTQ's, and no file is left. */
    @Test
    void aFailureOfGptqLeavesNoFile() throws Exception {
        Path got = dir.resolve("failed.gguf");
        try (HuggingFaceLlama.Checkpoint model = HuggingFaceLlama.open(bf16, Pools.TWO)) {
            GgufDecoderStream.Plan plan = GgufDecoderStream.plan(model, GgmlType.Q4_0, false, null);
            assertThatThrownBy(() -> GgufDecoderStream.writeGptq(
                            plan,
                            new GgufDecoderGptq(GgmlType.Q4_0, 0.01, Pools.TWO),
                            model,
                            List.of(new int[] {1, 2, 999}),
                            new GgufQuantizer(GgufQuantizer.Method.rtn(GgmlType.Q4_0), new ForkJoinPool(1)),
                            got,
                            null,
                            (name, bytes) -> {},
                            (b, stored, layers) -> {}))
                    .hasMessageContaining("999");
        }
        assertThat(got).doesNotExist();
        try (Stream<Path> left = Files.list(dir)) {
            assertThat(left.map(p -> p.getFileName().toString())).noneMatch(n -> n.startsWith("failed"));
        }
    }

    /** The folder's row reads, which the stream's items use, name the tensor and the rows they cannot give. */
    @Test
    void rowReadsNameWhatTheyCannotRead() throws Exception {
        try (HuggingFaceLlama.Checkpoint model = HuggingFaceLlama.open(bf16, Pools.TWO)) {
            String q = "model.layers.0.self_attn.q_proj.weight";
            float[] row = new float[64];
            model.readRows(q, 63, 1, row, 0);
            assertThat(row).isEqualTo(java.util.Arrays.copyOfRange(model.read(q).toArray(), 63 * 64, 64 * 64));
            assertThat(model.bytes(q)).isEqualTo(2L * 64 * 64);
            assertThatThrownBy(() -> model.readRows(q, 63, 2, new float[128], 0))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessage("bf16: tensor '" + q + "' [64, 64] has no rows [63, 65)");
            String norm = "model.layers.0.input_layernorm.weight";
            assertThatThrownBy(() -> model.readRows(norm, 0, 1, row, 0))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessage("bf16: tensor '" + norm + "' [64] has no rows [0, 1)");
            assertThatThrownBy(() -> model.bytes("model.layers.9.mlp.up_proj.weight"))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessage("bf16: no tensor 'model.layers.9.mlp.up_proj.weight'");
        }
    }

    /** A kept tensor has no type or quantizer of its own to take, and a weight no type quant4j does not write. */
    @Test
    void itemsRefuseWhatTheyCannotHold() {
        GgufQuantizer.Item kept = GgufQuantizer.Item.kept("n", new long[] {4}, GgmlType.F32, (f, l, o, i) -> {});
        assertThatThrownBy(() -> kept.as(GgmlType.F16))
                .isInstanceOf(IllegalStateException.class)
                .hasMessage("tensor 'n' is kept, not quantized");
        assertThatThrownBy(() -> kept.by(w -> null))
                .isInstanceOf(IllegalStateException.class)
                .hasMessage("tensor 'n' is kept, not quantized");
        GgufQuantizer.Item w = GgufQuantizer.Item.weight("w", 2, 32, 256, (first, count, dst) -> {});
        assertThatThrownBy(() -> w.as(GgmlType.IQ4_NL))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("tensor 'w': quant4j does not quantize to ggml type iq4_nl");
    }

    @Test
    void strictRefusesTheFallbackAsThePlanDoes() throws Exception {
        try (HuggingFaceLlama.Checkpoint model = HuggingFaceLlama.open(bf16, Pools.TWO)) {
            String planned = null;
            try {
                GgufDecoderFile.plan(QuantizedDecoderFile.readSource(bf16), GgmlType.Q4_0, true, null);
            } catch (IllegalArgumentException e) {
                planned = e.getMessage();
            }
            assertThat(planned).contains("172");
            assertThatThrownBy(() -> GgufDecoderStream.plan(model, GgmlType.Q4_0, true, null))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessage(planned);
        }
    }

    @Test
    void aTensorTheArchitectureNeedsIsNamedBeforeAnyWork() throws Exception {
        Path broken = dir.resolve("broken");
        Files.createDirectories(broken);
        SafeTensorsWriter w = new SafeTensorsWriter();
        for (Map.Entry<String, FloatMatrix> e : HuggingFaceLlamaFixture.tensors()) {
            if (!e.getKey().equals("model.layers.3.mlp.up_proj.weight")) {
                FloatMatrix m = e.getValue();
                w.addF32(
                        e.getKey(),
                        m.rows() == 1 ? new long[] {m.cols()} : new long[] {m.rows(), m.cols()},
                        m.toArray());
            }
        }
        w.write(broken.resolve("model.safetensors"));
        Files.writeString(broken.resolve("config.json"), HuggingFaceLlamaFixture.CONFIG);
        try (HuggingFaceLlama.Checkpoint model = HuggingFaceLlama.open(broken, Pools.TWO)) {
            assertThatThrownBy(() -> GgufDecoderStream.plan(model, GgmlType.Q8_0, false, null))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessage("broken: no tensor 'model.layers.3.mlp.up_proj.weight'");
        }
    }

    private static org.assertj.core.data.Percentage withRelative(double fraction) {
        return org.assertj.core.data.Percentage.withPercentage(100 * fraction);
    }

    private static org.assertj.core.data.Offset<Double> withAbsolute(double d) {
        return org.assertj.core.data.Offset.offset(d);
    }
}
