package dev.quant4j.pipeline;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.quant4j.ggml.GgmlGptq;
import dev.quant4j.ggml.GgmlQuants;
import dev.quant4j.ggml.GgmlType;
import dev.quant4j.gptq.HessianAccumulator;
import dev.quant4j.io.Gguf;
import dev.quant4j.io.SafeTensorsWriter;
import dev.quant4j.model.Linear;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.model.NextTokenMetrics;
import dev.quant4j.model.TokenSampler;
import dev.quant4j.pipeline.DecoderQuantizer.LayerReport;
import dev.quant4j.pipeline.QuantizedDecoderFile.Source;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.testing.Pools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * GPTQ of stories260K into ggml's blocks ({@link GgufDecoderGptq}) written as a llama.cpp model: every stored block is
 * what {@link GgmlGptq} makes of its matrix with the Hessian of the block-sequential pipeline, recomputed here from
 * the file itself; and the file's next-token KL divergence to the FP32 model is clearly below that of ggml's reference
 * quantizer into the same type.
 */
class GgufDecoderGptqTest {

    static Source source;
    static LlamaDecoder fp32;
    static List<int[]> calibration;
    static List<int[]> evaluation;

    @TempDir
    Path dir;

    @BeforeAll
    static void load() {
        source = GgufDecoderFileTest.source();
        fp32 = source.decoder(Pools.TWO);
        calibration = TokenSampler.sample(fp32, 8, 128, 1, 1.0, 1);
        evaluation = TokenSampler.sample(fp32, 8, 128, 1, 1.0, 2);
    }

    static byte[] gptqFile(GgmlType type, List<int[]> sequences) {
        return gptqFile(type, GgmlGptq.Order.COLUMNS, sequences);
    }

    static byte[] gptqFile(GgmlType type, GgmlGptq.Order order, List<int[]> sequences) {
        GgufDecoderGptq.Result r = new GgufDecoderGptq(type, 0.01, order, Pools.TWO).quantize(fp32, sequences, null);
        return GgufDecoderFile.plan(source, type, false, null, r.linears())
                .writer()
                .toBytes();
    }

    /**
     * The pipeline replayed from the file: block 0's input is the FP32 embeddings; in each block, group after group
     * (q/k/v; o; gate/up; down), the Hessian of the group's input with the earlier groups and blocks replaced by the
     * file's dequantized weights. Each block linear stored in q4_0 must be byte for byte {@link GgmlGptq}'s output for
     * its FP32 matrix and that Hessian, or, where that has the higher output error, ggml's reference quantizer's; a
     * 172-wide {@code ffn_down} is ggml's F16. In act-order too: the file is read as any other, and its blocks are
     * {@link GgmlGptq}'s act-order blocks.
     */
    @ParameterizedTest
    @CsvSource({"COLUMNS", "ACT_ORDER"})
    void everyBlockIsGgmlGptqsOutputForItsMatrixAndHessian(GgmlGptq.Order order) {
        GgmlType type = GgmlType.Q4_0;
        List<int[]> sequences = calibration.subList(0, 4);
        byte[] file = gptqFile(type, order, sequences);
        Map<String, byte[]> stored = new LinkedHashMap<>();
        Map<String, GgmlType> types = new LinkedHashMap<>();
        try (Gguf g = Gguf.parse(file, "gptq.gguf")) {
            for (Gguf.TensorInfo t : g.tensors()) {
                stored.put(t.name(), g.readBytes(t.name()));
                types.put(t.name(), t.type());
            }
        }
        List<FloatMatrix> states = new ArrayList<>();
        for (int[] seq : sequences) {
            states.add(fp32.embed(seq));
        }
        int gptqLayers = 0;
        int rtnLayers = 0;
        LlamaDecoder model = fp32;
        for (int b = 0; b < fp32.config().layers(); b++) {
            List<Linear> linears = fp32.linears(b);
            for (Set<String> group : DecoderGptq.TRUE_SEQUENTIAL) {
                List<Linear> members = linears.stream()
                        .filter(l -> group.stream().anyMatch(s -> l.name().endsWith("." + s)))
                        .toList();
                String first = members.get(0).name();
                HessianAccumulator h =
                        new HessianAccumulator(first, members.get(0).inFeatures(), Pools.TWO);
                for (FloatMatrix state : states) {
                    model.inputs(b, state, Set.of(first), (name, in) -> h.add(in, 1));
                }
                Map<String, Linear> replaced = new LinkedHashMap<>();
                for (Linear l : members) {
                    Linear.Dense d = (Linear.Dense) l;
                    String gguf = GgufDecoderFile.ggufName(d.name() + ".weight");
                    FloatMatrix w = d.weight().named(d.name() + ".weight");
                    byte[] bytes = stored.get(gguf);
                    GgmlType t = types.get(gguf);
                    if (w.cols() % 32 != 0) {
                        assertThat(t).as(gguf).isEqualTo(GgmlType.F16);
                        assertThat(bytes)
                                .as(gguf)
                                .isEqualTo(GgmlQuants.quantize(GgmlType.F16, w.toArray(), w.rows(), w.cols()));
                    } else {
                        assertThat(t).as(gguf).isEqualTo(type);
                        GgmlGptq.Result expected = GgmlGptq.quantize(type, w, h, 0.01, order, Pools.TWO);
                        byte[] rtn = GgmlQuants.quantize(type, w.toArray(), w.rows(), w.cols());
                        double gErr =
                                h.outputError(w, FloatMatrix.of("g", w.rows(), w.cols(), expected.dequantized(), 0));
                        double rErr = h.outputError(w, dequantized(type, rtn, w));
                        if (rErr < gErr) {
                            assertThat(bytes)
                                    .as(gguf + " kept ggml's reference blocks")
                                    .isEqualTo(rtn);
                            rtnLayers++;
                        } else {
                            assertThat(bytes).as(gguf + ": GgmlGptq's blocks").isEqualTo(expected.data());
                            gptqLayers++;
                        }
                    }
                    replaced.put(
                            d.name(),
                            Linear.dense(d.name(), dequantized(t, bytes, w).named(d.name()), d.bias(), Pools.TWO));
                }
                model = model.withLinears(replaced);
            }
            List<FloatMatrix> next = new ArrayList<>();
            for (FloatMatrix state : states) {
                next.add(model.block(b, state, null));
            }
            states = next;
        }
        // 30 q4_0 linears (5 blocks x q, k, v, o, gate, up): GPTQ's output error is the lower one on nearly all
        assertThat(gptqLayers + rtnLayers).isEqualTo(30);
        assertThat(gptqLayers).isGreaterThanOrEqualTo(28);
    }

    private static FloatMatrix dequantized(GgmlType type, byte[] data, FloatMatrix like) {
        return FloatMatrix.of(
                like.name(), like.rows(), like.cols(), GgmlQuants.dequantize(type, data, like.rows(), like.cols()), 0);
    }

    static NextTokenMetrics.Summary kl(byte[] gguf) {
        LlamaDecoder q = GgufDecoderFile.read(gguf, "q.gguf").decoder(Pools.TWO);
        NextTokenMetrics m = new NextTokenMetrics();
        for (int[] seq : evaluation) {
            m.add(seq, fp32.logits(seq), q.logits(seq));
        }
        return m.summary();
    }

    /**
     * The next-token KL divergence of the written file (its dequantized weights, embeddings and output head in the
     * type too, as in the RTN file) to the FP32 model, on 8 held-out sequences, with GPTQ calibrated on 8.
     */
    @ParameterizedTest
    @CsvSource({"q4_0, COLUMNS, 0.92", "q4_1, COLUMNS, 0.92", "q4_1, ACT_ORDER, 0.92"})
    void gptqBeatsGgmlsReferenceQuantizerIntoTheSameType(String typeName, GgmlGptq.Order order, double bound) {
        GgmlType type = GgmlType.byName(typeName);
        NextTokenMetrics.Summary rtn =
                kl(GgufDecoderFile.plan(source, type, false).writer().toBytes());
        NextTokenMetrics.Summary gptq = kl(gptqFile(type, order, calibration));
        System.out.printf(
                Locale.ROOT,
                "stories260K %s %s: ggml's reference KL %.4f, GPTQ KL %.4f (%.3fx)%n",
                type,
                order,
                rtn.klMean(),
                gptq.klMean(),
                gptq.klMean() / rtn.klMean());
        assertThat(gptq.klMean()).isLessThan(bound * rtn.klMean());
    }

    /**
     * A Hugging Face folder of the same model: q/k rows in the half-split layout, GPTQ run on them, the rows permuted
     * back as whole rows of blocks. GPTQ treats rows independently, so the file holds the llama2.c checkpoint's bytes.
     */
    @Test
    void aHuggingFaceFolderGivesTheLlama2cCheckpointsBlocks() throws Exception {
        Path hf = dir.resolve("stories-hf");
        Files.createDirectories(hf);
        Files.writeString(hf.resolve("config.json"), HuggingFaceLlamaFixture.CONFIG);
        SafeTensorsWriter w = new SafeTensorsWriter();
        for (Map.Entry<String, FloatMatrix> e : HuggingFaceLlamaFixture.tensors()) {
            FloatMatrix m = e.getValue();
            w.addF32(e.getKey(), m.rows() == 1 ? new long[] {m.cols()} : new long[] {m.rows(), m.cols()}, m.toArray());
        }
        w.write(hf.resolve("model.safetensors"));
        Source fromHf = QuantizedDecoderFile.readSource(hf);
        List<int[]> sequences = calibration.subList(0, 2);
        GgufDecoderGptq.Result r = new GgufDecoderGptq(GgmlType.Q4_1, 0.01, Pools.TWO)
                .quantize(fromHf.decoder(Pools.TWO), sequences, null);
        byte[] a = gptqFile(GgmlType.Q4_1, sequences);
        byte[] b = GgufDecoderFile.plan(fromHf, GgmlType.Q4_1, false, null, r.linears())
                .writer()
                .toBytes();
        try (Gguf ga = Gguf.parse(a, "bin");
                Gguf gb = Gguf.parse(b, "hf")) {
            for (Gguf.TensorInfo t : ga.tensors()) {
                assertThat(gb.readBytes(t.name())).as(t.name()).isEqualTo(ga.readBytes(t.name()));
            }
        }
    }

    @ParameterizedTest
    @CsvSource({"COLUMNS", "ACT_ORDER"})
    void reportsNameTheStoredTypeAndTheThreadCountDoesNotMatter(GgmlGptq.Order order) {
        List<int[]> sequences = calibration.subList(0, 2);
        GgufDecoderGptq.Result two =
                new GgufDecoderGptq(GgmlType.Q8_0, 0.01, order, Pools.TWO).quantize(fp32, sequences, null);
        GgufDecoderGptq.Result one = new GgufDecoderGptq(GgmlType.Q8_0, 0.01, order, Pools.ONE)
                .quantize(source.decoder(Pools.ONE), sequences, null);
        assertThat(two.layers()).hasSize(35);
        for (Map.Entry<String, GgufDecoderFile.Blocks> e : two.linears().entrySet()) {
            assertThat(one.linears().get(e.getKey()).data())
                    .as(e.getKey())
                    .isEqualTo(e.getValue().data());
        }
        LayerReport down = two.layers().get(6);
        assertThat(down.name()).isEqualTo("model.layers.0.mlp.down_proj");
        assertThat(down.scheme()).isEqualTo("f16");
        assertThat(down.gptqError()).isNaN();
        for (LayerReport l : two.layers()) {
            if (!l.name().endsWith("down_proj")) {
                assertThat(l.scheme()).isEqualTo("q8_0");
                assertThat(l.keptRtn()).isEqualTo(l.rtnError() < l.gptqError());
            }
        }
    }

    @Test
    void otherCombinationsNameTheThreeTypes() {
        assertThat(GgufDecoderGptq.type(4, 32, true)).isEqualTo(GgmlType.Q4_0);
        assertThat(GgufDecoderGptq.type(4, 32, false)).isEqualTo(GgmlType.Q4_1);
        assertThat(GgufDecoderGptq.type(8, 32, true)).isEqualTo(GgmlType.Q8_0);
        assertThatThrownBy(() -> GgufDecoderGptq.type(4, 128, true))
                .hasMessage("GPTQ into GGUF: --bits 4 --group-size 128 --sym has no ggml type; GPTQ writes q4_0"
                        + " (--bits 4 --group-size 32 --sym), q4_1 (--bits 4 --group-size 32 --asym) or q8_0 (--bits 8"
                        + " --group-size 32 --sym)");
        assertThatThrownBy(() -> GgufDecoderGptq.type(8, 32, false))
                .hasMessageContaining("--bits 8 --group-size 32 --asym");
        assertThatThrownBy(() -> new GgufDecoderGptq(GgmlType.Q5_0, 0.01, Pools.TWO))
                .hasMessage("GPTQ writes ggml's q4_0, q4_1 or q8_0, not q5_0");
        assertThatThrownBy(() -> new GgufDecoderGptq(GgmlType.Q4_0, 0, Pools.TWO))
                .hasMessageContaining("damping 0.0");
        assertThatThrownBy(() -> new GgufDecoderGptq(GgmlType.Q4_0, 0.01, Pools.TWO).quantize(fp32, List.of(), null))
                .hasMessageContaining("needs calibration sequences");
    }
}
