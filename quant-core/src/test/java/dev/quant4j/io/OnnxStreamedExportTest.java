package dev.quant4j.io;

import static org.assertj.core.api.Assertions.assertThat;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import dev.quant4j.codebook.BlockwiseQuantizer;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link OnnxExport#write(Path, OnnxModel, byte[], Map, int)}: a quantized all-MiniLM-L6-v2 whose single file would
 * pass the limit (lowered here from protobuf's 2 GB to 1 MB) is written with its initializers in a data file, their
 * values made one tensor at a time, and ONNX Runtime runs it to exactly the outputs of the single-file export; under
 * the limit the single file is the bytes {@link OnnxExport#quantizedModel} gives.
 */
class OnnxStreamedExportTest {

    private static final long[] IDS = {101, 7592, 2088, 1010, 2023, 2003, 1037, 3231, 1012, 102};

    @TempDir
    Path dir;

    static byte[] model;
    static OnnxModel input;
    static Map<String, QuantizedWeight> weights;

    /** Every MatMul weight RTN int4 g32 (the layer-0 query as NF4), the word embeddings int4 g64. */
    @BeforeAll
    static void quantize() throws Exception {
        model = OnnxModelTest.realModel();
        input = OnnxModel.parse("all-minilm-l6-v2.onnx", model);
        weights = new LinkedHashMap<>();
        for (String w : input.matMulWeights().values()) {
            if (!weights.containsKey(w)) {
                var t = input.initializer(w).matrix().transpose().named(w);
                weights.put(
                        w,
                        weights.isEmpty()
                                ? new BlockwiseQuantizer(CodebookScheme.nf4(64)).quantize(t)
                                : new RtnQuantizer(LinearScheme.asym(4, 32)).quantize(t));
            }
        }
        String words = "embeddings.word_embeddings.weight";
        weights.put(
                words,
                new RtnQuantizer(LinearScheme.asym(4, 64))
                        .quantize(input.initializer(words).matrix().named(words)));
    }

    /** ONNX Runtime's last hidden state for {@link #IDS}, the model loaded from its path (its data file beside it). */
    static float[][] ort(Path path) throws Exception {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession.SessionOptions o = new OrtSession.SessionOptions()) {
            o.setIntraOpNumThreads(1);
            long[][] mask = new long[1][IDS.length];
            Arrays.fill(mask[0], 1);
            Map<String, OnnxTensor> feed = new HashMap<>();
            try (OrtSession s = env.createSession(path.toString(), o)) {
                feed.put("input_ids", OnnxTensor.createTensor(env, new long[][] {IDS}));
                feed.put("attention_mask", OnnxTensor.createTensor(env, mask));
                feed.put("token_type_ids", OnnxTensor.createTensor(env, new long[1][IDS.length]));
                try (OrtSession.Result r = s.run(feed)) {
                    return ((float[][][]) r.get(0).getValue())[0];
                }
            } finally {
                feed.values().forEach(OnnxTensor::close);
            }
        }
    }

    private static List<String> files(Path folder) throws Exception {
        try (Stream<Path> s = Files.list(folder)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void overTheLimitTheInitializersGoToADataFileAndOnnxRuntimeGivesTheSingleFilesOutputs() throws Exception {
        byte[] single = OnnxExport.quantizedModel("all-minilm-l6-v2.onnx", model, weights);
        Path singleFile = Files.createDirectory(dir.resolve("single")).resolve("model-q.onnx");
        OnnxExport.write(singleFile, input, model, weights, 0);
        assertThat(Files.readAllBytes(singleFile)).isEqualTo(single);
        assertThat(files(singleFile.getParent())).containsExactly("model-q.onnx");

        Path out = Files.createDirectory(dir.resolve("out")).resolve("model-q.onnx");
        OnnxExport.write(out, input, model, weights, 0, 1 << 20);
        assertThat(files(out.getParent())).containsExactly("model-q.onnx", "model-q.onnx.data");
        assertThat(Files.size(out)).isLessThan(single.length / 50);

        // the same initializers, in the same order, with the same values; the large ones at 4096-aligned offsets
        OnnxModel streamed = OnnxModel.read(out);
        OnnxModel whole = OnnxModel.parse("single", single);
        assertThat(new ArrayList<>(streamed.initializers().keySet()))
                .isEqualTo(new ArrayList<>(whole.initializers().keySet()));
        long externalBytes = 0;
        for (OnnxModel.Initializer t : whole.initializers().values()) {
            OnnxModel.Initializer s = streamed.initializer(t.name());
            assertThat(s.dataType()).as(t.name()).isEqualTo(t.dataType());
            assertThat(s.dims()).as(t.name()).isEqualTo(t.dims());
            assertThat(s.bytes()).as(t.name()).isEqualTo(t.bytes());
            if (t.bytes().length >= OnnxExternalData.SIZE_THRESHOLD) {
                assertThat(s.external()).as(t.name()).isNotNull();
                assertThat(s.external().offset() % OnnxExternalData.ALIGNMENT).isZero();
                assertThat(s.external().location()).isEqualTo("model-q.onnx.data");
                externalBytes += s.external().length();
            } else {
                assertThat(s.external()).as(t.name()).isNull();
            }
        }
        assertThat(Files.size(out.resolveSibling("model-q.onnx.data"))).isGreaterThanOrEqualTo(externalBytes);
        assertThat(streamed.nodes()).isEqualTo(whole.nodes());

        // ONNX Runtime, the reader that matters, gives the single file's outputs exactly
        float[][] reference = ort(singleFile);
        assertThat(ort(out)).isDeepEqualTo(reference);
    }

    /** The size counted for the limit is never below the single file's, and within a few bytes a tensor of it. */
    @Test
    void singleFileBoundIsAnUpperBoundWithinAFewBytesATensor() {
        for (int level : new int[] {0, 4}) {
            byte[] single = OnnxExport.quantizedModel("all-minilm-l6-v2.onnx", model, weights, level);
            OnnxRewriter.Edit edit =
                    OnnxExport.edit("all-minilm-l6-v2.onnx", model, input, weights, level, java.util.Set.of());
            byte[] headers = OnnxRewriter.rewrite("all-minilm-l6-v2.onnx", model, edit, true);
            var lazy = edit.lazyTensors().values();
            long bound = OnnxExport.singleFileBound(headers.length, lazy);
            assertThat(bound).isGreaterThanOrEqualTo(single.length);
            assertThat(bound - single.length).isLessThan(16L * lazy.size() + 16);
            // exactly at the bound it is one file, one byte under it two
            Path at = dir.resolve("at-" + level).resolve("m.onnx");
            Path under = dir.resolve("under-" + level).resolve("m.onnx");
            try {
                Files.createDirectories(at.getParent());
                Files.createDirectories(under.getParent());
                OnnxExport.write(at, input, model, weights, level, bound);
                OnnxExport.write(under, input, model, weights, level, bound - 1);
                assertThat(Files.readAllBytes(at)).isEqualTo(single);
                assertThat(Files.exists(under.resolveSibling("m.onnx.data"))).isTrue();
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }
    }

    /** A model read with external data is written with external data, even when it is small. */
    @Test
    void externalInputGivesExternalOutputWithTheSingleFilesValues() throws Exception {
        Path ext = Files.createDirectory(dir.resolve("ext")).resolve("model.onnx");
        OnnxExternalData.write(ext, "all-minilm-l6-v2.onnx", model, input);
        OnnxModel read = OnnxModel.read(ext);
        Path out = Files.createDirectory(dir.resolve("q")).resolve("q.onnx");
        OnnxExport.write(out, read, Files.readAllBytes(ext), weights, 0);
        assertThat(files(out.getParent())).containsExactly("q.onnx", "q.onnx.data");
        OnnxModel whole = OnnxModel.parse("single", OnnxExport.quantizedModel("m", model, weights));
        OnnxModel streamed = OnnxModel.read(out);
        for (OnnxModel.Initializer t : whole.initializers().values()) {
            assertThat(streamed.initializer(t.name()).bytes()).as(t.name()).isEqualTo(t.bytes());
        }
    }
}
