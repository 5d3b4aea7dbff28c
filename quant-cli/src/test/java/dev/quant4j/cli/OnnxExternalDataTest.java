package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import dev.quant4j.cli.QuantCliTest.Result;
import dev.quant4j.io.OnnxExternalData;
import dev.quant4j.io.OnnxModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * all-MiniLM-L6-v2 saved with its initializers in an external data file ({@code model.onnx} + {@code
 * model.onnx.data}): ONNX Runtime runs it as it runs the single file; {@code quant inspect} and {@code quant quantize}
 * read its weights from the data file, and {@code --format onnx} writes {@code model-q.onnx} + {@code
 * model-q.onnx.data}, which ONNX Runtime runs to the outputs of the model quantized from the single file.
 */
class OnnxExternalDataTest {

    @TempDir
    Path dir;

    private static final long[] IDS = {101, 7592, 2088, 1010, 2023, 2003, 1037, 3231, 1012, 102};

    /** ONNX Runtime's last hidden state for {@link #IDS}, the model loaded from its path (its data files beside it). */
    static float[][] ort(Path model) throws Exception {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession.SessionOptions o = new OrtSession.SessionOptions()) {
            o.setIntraOpNumThreads(1);
            long[][] mask = new long[1][IDS.length];
            java.util.Arrays.fill(mask[0], 1);
            Map<String, OnnxTensor> feed = new HashMap<>();
            try (OrtSession s = env.createSession(model.toString(), o)) {
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

    @Test
    void externalDataIsReadAndWrittenAndOnnxRuntimeAgrees() throws Exception {
        byte[] bytes = EvalCommand.resource(EvalCommand.MODEL);
        Path single = Files.createDirectory(dir.resolve("single")).resolve("model.onnx");
        Files.write(single, bytes);
        Path ext = Files.createDirectory(dir.resolve("ext")).resolve("model.onnx");
        OnnxExternalData.write(ext, "all-minilm-l6-v2.onnx", bytes, OnnxModel.parse("all-minilm-l6-v2.onnx", bytes));
        assertThat(Files.size(ext)).isLessThan(bytes.length / 100);
        assertThat(Files.size(ext.resolveSibling("model.onnx.data"))).isGreaterThan(80_000_000);
        // ONNX Runtime, an independent reader, runs both files to the same outputs
        float[][] reference = ort(single);
        assertThat(ort(ext)).isDeepEqualTo(reference);

        OnnxModel read = OnnxModel.read(ext);
        assertThat(read.hasExternalData()).isTrue();
        OnnxModel whole = OnnxModel.read(single);
        for (OnnxModel.Initializer t : whole.initializers().values()) {
            if (t.dtype() != null) {
                assertThat(read.initializer(t.name()).bytes()).as(t.name()).isEqualTo(t.bytes());
            }
        }
        Result inspectSingle = QuantCliTest.run("inspect", single.toString());
        Result inspectExt = QuantCliTest.run("inspect", ext.toString());
        assertThat(inspectExt.code()).as(inspectExt.err()).isZero();
        assertThat(inspectExt.out().replace(ext.toString(), "M"))
                .isEqualTo(inspectSingle.out().replace(single.toString(), "M"));

        // quantized to safetensors: the same bytes from either file
        Path stSingle = dir.resolve("single.safetensors");
        Path stExt = dir.resolve("ext.safetensors");
        for (Path[] io : new Path[][] {{single, stSingle}, {ext, stExt}}) {
            Result r = QuantCliTest.run(
                    "quantize",
                    "--method",
                    "rtn",
                    "--bits",
                    "4",
                    "--group-size",
                    "32",
                    "--in",
                    io[0].toString(),
                    "--out",
                    io[1].toString());
            assertThat(r.code()).as(r.err()).isZero();
        }
        assertThat(Files.readAllBytes(stExt)).isEqualTo(Files.readAllBytes(stSingle));

        // quantized to ONNX: external data in, external data out, the single file's outputs in ONNX Runtime
        Path qSingle = dir.resolve("q-single.onnx");
        Path out = Files.createDirectory(dir.resolve("out")).resolve("model-q.onnx");
        for (Path[] io : new Path[][] {{single, qSingle}, {ext, out}}) {
            Result r = QuantCliTest.run(
                    "quantize",
                    "--format",
                    "onnx",
                    "--method",
                    "rtn",
                    "--bits",
                    "4",
                    "--group-size",
                    "32",
                    "--in",
                    io[0].toString(),
                    "--out",
                    io[1].toString());
            assertThat(r.code()).as(r.err()).isZero();
        }
        try (Stream<Path> files = Files.list(out.getParent())) {
            assertThat(files.map(p -> p.getFileName().toString()).sorted().toList())
                    .isEqualTo(List.of("model-q.onnx", "model-q.onnx.data"));
        }
        assertThat(Files.size(out)).isLessThan(bytes.length / 100);
        float[][] quantized = ort(qSingle);
        assertThat(ort(out)).isDeepEqualTo(quantized);
        assertThat(quantized).isNotEqualTo(reference);
    }
}
