package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.cli.QuantCliTest.Result;
import dev.quant4j.cli.eval.EmbeddingEval;
import dev.quant4j.cli.eval.OrtEmbedder;
import dev.quant4j.io.Npy;
import dev.quant4j.io.OnnxExternalData;
import dev.quant4j.io.OnnxModel;
import dev.quant4j.io.QuantizedSafeTensors;
import dev.quant4j.model.WordPieceTokenizer;
import dev.quant4j.tensor.FloatMatrix;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code quant quantize --format onnx} through the command line: the exit code, the message, the files on disk, and
 * ONNX Runtime running what was written.
 */
class QuantizeOnnxFormatTest {

    @TempDir
    Path dir;

    private List<String> files() throws Exception {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    /**
     * The real all-MiniLM-L6-v2, RTN 4-bit g128: ONNX Runtime loads the written model, its embeddings stay close to
     * the FP32 model's, and every initializer but the 36 MatMul weights is kept with its bytes (the INT64
     * position_ids included), as are the graph inputs and outputs.
     */
    @Test
    void miniLmAsMatMulNBits() throws Exception {
        Path in = dir.resolve("model.onnx");
        byte[] fp32 = EvalCommand.resource(EvalCommand.MODEL);
        Files.write(in, fp32);
        Path out = dir.resolve("model-q.onnx");
        Result r = QuantCliTest.run(
                "quantize", "--in", in.toString(), "--format", "onnx", "--method", "rtn", "--out", out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("wrote " + out + " (36 quantized as com.microsoft.MatMulNBits, 66 unchanged)");
        assertThat(files()).containsExactly("model-q.onnx", "model.onnx");
        OnnxModel before = OnnxModel.parse("fp32", fp32);
        OnnxModel after = OnnxModel.read(out);
        assertThat(after.inputs()).isEqualTo(before.inputs());
        assertThat(after.outputs()).isEqualTo(before.outputs());
        assertThat(after.nodes().stream().filter(n -> n.opType().equals("MatMulNBits")))
                .hasSize(36);
        int kept = 0;
        for (OnnxModel.Initializer t : before.initializers().values()) {
            if (before.matMulWeights().containsValue(t.name())) {
                assertThat(after.initializers()).doesNotContainKey(t.name());
            } else {
                assertThat(after.initializer(t.name()).bytes()).as(t.name()).isEqualTo(t.bytes());
                kept++;
            }
        }
        assertThat(kept).isEqualTo(66);
        assertThat(after.initializers().values().stream().filter(t -> t.dataType() == OnnxModel.INT64))
                .isNotEmpty();
        WordPieceTokenizer tokenizer = WordPieceTokenizer.parse(
                "tokenizer", new String(EvalCommand.resource(EvalCommand.TOKENIZER), StandardCharsets.UTF_8));
        List<int[]> texts = new ArrayList<>();
        for (String line : EvalCommand.lines("/wordnet/pairs.tsv").subList(0, 5)) {
            texts.add(tokenizer.encode(line.split("\t", 2)[1]));
        }
        float[][] q;
        float[][] f;
        try (OrtEmbedder ort = new OrtEmbedder(Files.readAllBytes(out), 1)) {
            q = ort.embed(texts, i -> {});
        }
        try (OrtEmbedder ort = new OrtEmbedder(fp32, 1)) {
            f = ort.embed(texts, i -> {});
        }
        // RTN int4 g128 against FP32: mean cosine 0.957 over the 2000 sentences of docs/real-model.md
        assertThat(EmbeddingEval.cosineStats(f, q)[0]).isGreaterThan(0.93);
        // the word embeddings too, picked with --include: GatherBlockQuantized, the model about 13 MB
        Path small = dir.resolve("model-q4all.onnx");
        r = QuantCliTest.run(
                "quantize",
                "--in",
                in.toString(),
                "--format",
                "onnx",
                "--method",
                "rtn",
                "--include",
                "MatMul|word_embeddings",
                "--out",
                small.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out())
                .contains("(37 quantized as com.microsoft.MatMulNBits and GatherBlockQuantized, 65 unchanged)");
        assertThat(Files.size(small)).isLessThan(14_000_000L);
        float[][] q4all;
        try (OrtEmbedder ort = new OrtEmbedder(Files.readAllBytes(small), 1)) {
            q4all = ort.embed(texts, i -> {});
        }
        assertThat(EmbeddingEval.cosineStats(f, q4all)[0]).isGreaterThan(0.93);
    }

    /**
     * The position table picked with --include: 8 bits in blocks of 128 becomes an 8-bit GatherBlockQuantized; a group
     * of 96 (not a power of two) is exit 2 with a message naming the table and the sizes that fit, and no file.
     */
    @Test
    void positionTableFromTheCommandLine() throws Exception {
        Path in = dir.resolve("model.onnx");
        Files.write(in, EvalCommand.resource(EvalCommand.MODEL));
        Path out = dir.resolve("model-p8.onnx");
        Result r = QuantCliTest.run(
                "quantize",
                "--in",
                in.toString(),
                "--format",
                "onnx",
                "--method",
                "rtn",
                "--bits",
                "8",
                "--group-size",
                "128",
                "--include",
                "position_embeddings",
                "--out",
                out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out())
                .contains("(1 quantized as com.microsoft.MatMulNBits and GatherBlockQuantized, 101 unchanged)");
        OnnxModel after = OnnxModel.read(out);
        assertThat(after.nodes().stream().filter(n -> n.opType().equals("GatherBlockQuantized")))
                .singleElement()
                .satisfies(n -> assertThat(n.inputs().get(0)).isEqualTo("embeddings.position_embeddings.weight_Q8"));
        assertThat(after.initializer("embeddings.position_embeddings.weight_Q8").dims())
                .containsExactly(512, 384);
        Path bad = dir.resolve("model-p96.onnx");
        r = QuantCliTest.run(
                "quantize",
                "--in",
                in.toString(),
                "--format",
                "onnx",
                "--method",
                "rtn",
                "--group-size",
                "96",
                "--include",
                "position_embeddings",
                "--out",
                bad.toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err())
                .contains("table 'embeddings.position_embeddings.weight' cannot be written as GatherBlockQuantized:"
                        + " group size 96")
                .contains("(--group-size 16 to 128 fit)");
        assertThat(files()).containsExactly("model-p8.onnx", "model.onnx");
    }

    /**
     * GPTQ with and without act-order (without, it is quantized as the model is written), AWQ, and RTN --sym at 8
     * bits, on a small model, each once as ONNX and once as quant4j's .safetensors (every method is deterministic):
     * ONNX Runtime's output equals x times the weights the .safetensors file dequantizes to (AWQ: the effective
     * weights, its 1 / s applied by the Mul), and the lines printed for the weight are the same.
     */
    @Test
    void gptqAwqAndRtnRunInOnnxRuntimeAsQuant4jDequantizesThem() throws Exception {
        sameAsSafeTensors(true, "--method", "gptq", "--act-order", "--group-size", "16");
        sameAsSafeTensors(true, "--method", "gptq", "--group-size", "16");
        sameAsSafeTensors(true, "--method", "gptq", "--sym", "--static-groups", "--mse", "--group-size", "32");
        sameAsSafeTensors(true, "--method", "awq", "--group-size", "32");
        sameAsSafeTensors(false, "--method", "rtn", "--sym", "--bits", "8", "--group-size", "-1");
    }

    private void sameAsSafeTensors(boolean calibrated, String... method) throws Exception {
        int k = 64;
        int n = 16;
        Random rnd = new Random(11);
        float[] w = new float[k * n];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) rnd.nextGaussian();
        }
        Path in = dir.resolve("mm.onnx");
        Files.write(in, OnnxExportOrtTest.matMulModel(w, 3, k, n));
        float[] x = new float[200 * k];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rnd.nextGaussian() * (1 + (i % k) / 8f);
        }
        Path calib = dir.resolve("x.npy");
        Npy.write(calib, new long[] {200, k}, x);
        String[] common = concat(new String[] {"quantize", "--in", in.toString()}, method);
        if (calibrated) {
            common = concat(common, "--calib", calib.toString());
        }
        Path q4j = dir.resolve("q.safetensors");
        Path qonnx = dir.resolve("q.onnx");
        Result onnx = QuantCliTest.run(concat(common, "--format", "onnx", "--out", qonnx.toString()));
        assertThat(onnx.code()).as(onnx.err()).isZero();
        Result st = QuantCliTest.run(concat(common, "--out", q4j.toString()));
        assertThat(st.code()).as(st.err()).isZero();
        assertThat(weightLines(onnx.out())).as(String.join(" ", method)).isEqualTo(weightLines(st.out()));
        assertThat(weightLines(onnx.out())).isNotEmpty();
        // the same model with its weight in an external data file: quantized as it is written (rtn; gptq without
        // act-order), the same tensors, byte for byte
        Path ext = Files.createDirectories(dir.resolve("ext")).resolve("mm.onnx");
        byte[] model = Files.readAllBytes(in);
        OnnxExternalData.write(ext, "mm.onnx", model, OnnxModel.parse("mm.onnx", model));
        Path qext = ext.resolveSibling("q.onnx");
        List<String> extArgs = new ArrayList<>(List.of(common));
        extArgs.set(extArgs.indexOf(in.toString()), ext.toString());
        extArgs.addAll(List.of("--format", "onnx", "--out", qext.toString()));
        Result onnxExt = QuantCliTest.run(extArgs.toArray(String[]::new));
        assertThat(onnxExt.code()).as(onnxExt.err()).isZero();
        assertThat(weightLines(onnxExt.out())).isEqualTo(weightLines(onnx.out()));
        OnnxModel fromExt = OnnxModel.read(qext);
        OnnxModel fromSingle = OnnxModel.read(qonnx);
        assertThat(fromExt.initializers().keySet())
                .isEqualTo(fromSingle.initializers().keySet());
        for (String t : fromSingle.initializers().keySet()) {
            assertThat(fromExt.initializer(t).bytes())
                    .as(String.join(" ", method) + ": " + t)
                    .isEqualTo(fromSingle.initializer(t).bytes());
        }
        try (Stream<Path> files = Files.list(ext.getParent())) {
            for (Path f : files.toList()) {
                Files.delete(f);
            }
        }
        FloatMatrix deq = QuantizedSafeTensors.read(q4j).weights().get("W").dequantize(); // [n, k]
        float[][] a = new float[3][k];
        for (float[] row : a) {
            for (int c = 0; c < k; c++) {
                row[c] = (float) rnd.nextGaussian();
            }
        }
        float[][] y = OnnxExportOrtTest.runOrt(Files.readAllBytes(qonnx), a);
        for (int i = 0; i < 3; i++) {
            for (int j = 0; j < n; j++) {
                double e = 0;
                double mag = 0;
                for (int c = 0; c < k; c++) {
                    e += (double) a[i][c] * deq.get(j, c);
                    mag += Math.abs((double) a[i][c] * deq.get(j, c));
                }
                assertThat(Math.abs(y[i][j] - e) / mag)
                        .as(String.join(" ", method))
                        .isLessThan(1e-5);
            }
        }
        Files.delete(q4j);
        Files.delete(qonnx);
    }

    /** The lines a quantize command prints before its summary ({@code wrote ...}). */
    private static List<String> weightLines(String out) {
        return out.lines().takeWhile(l -> !l.startsWith("wrote ")).toList();
    }

    /** NF4 through the command line: MatMulBnb4 in ONNX Runtime equals what the .safetensors dequantizes to. */
    @Test
    void nf4AsMatMulBnb4() throws Exception {
        int k = 64;
        int n = 8;
        Random rnd = new Random(12);
        float[] w = new float[k * n];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) rnd.nextGaussian();
        }
        Path in = dir.resolve("mm.onnx");
        Files.write(in, OnnxExportOrtTest.matMulModel(w, 3, k, n));
        String[] common = {"quantize", "--in", in.toString(), "--method", "nf4", "--block-size", "32"};
        Result onnx = QuantCliTest.run(concat(
                common, "--format", "onnx", "--out", dir.resolve("q.onnx").toString()));
        assertThat(onnx.code()).as(onnx.err()).isZero();
        assertThat(onnx.out()).contains("(1 quantized as com.microsoft.MatMulBnb4, 0 unchanged)");
        Result st = QuantCliTest.run(
                concat(common, "--out", dir.resolve("q.safetensors").toString()));
        assertThat(st.code()).as(st.err()).isZero();
        FloatMatrix deq = QuantizedSafeTensors.read(dir.resolve("q.safetensors"))
                .weights()
                .get("W")
                .dequantize();
        float[][] a = new float[3][k];
        for (float[] row : a) {
            for (int c = 0; c < k; c++) {
                row[c] = (float) rnd.nextGaussian();
            }
        }
        float[][] y = OnnxExportOrtTest.runOrt(Files.readAllBytes(dir.resolve("q.onnx")), a);
        for (int i = 0; i < 3; i++) {
            for (int j = 0; j < n; j++) {
                double e = 0;
                for (int c = 0; c < k; c++) {
                    e += (double) a[i][c] * deq.get(j, c);
                }
                assertThat((double) y[i][j]).isCloseTo(e, org.assertj.core.api.Assertions.within(1e-4));
            }
        }
    }

    private static String[] concat(String[] a, String... b) {
        String[] r = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }

    /**
     * An --include match that ONNX output cannot replace: a Gather table under a codebook (MatMulBnb4 has no Gather
     * form), refused before anything is quantized, naming the initializer; nothing written.
     */
    @Test
    void aGatherTableUnderACodebookIsRefused() throws Exception {
        Path in = dir.resolve("minilm.onnx");
        Files.write(in, EvalCommand.resource(EvalCommand.MODEL));
        Result r = QuantCliTest.run(
                "quantize",
                "--in",
                in.toString(),
                "--format",
                "onnx",
                "--method",
                "nf4",
                "--include",
                "word_embeddings",
                "--out",
                dir.resolve("q.onnx").toString());
        assertThat(r.code()).as(r.err()).isEqualTo(2);
        assertThat(r.err().strip())
                .startsWith("quant: --format onnx: initializer '")
                .contains("word_embeddings")
                .contains("is not the weight of a MatMul node; only those become MatMulNBits/MatMulBnb4");
        assertThat(files()).containsExactly("minilm.onnx");
    }

    /** What MatMulNBits cannot hold, and wrong files: exit 2, a message naming what fits, nothing written. */
    @Test
    void clearErrorsAndNothingWritten() throws Exception {
        Path in = dir.resolve("mm.onnx");
        Files.write(in, OnnxExportOrtTest.matMulModel(new float[64 * 8], 3, 64, 8));
        String out = dir.resolve("q.onnx").toString();
        Result r = QuantCliTest.run(
                "quantize", "--in", in.toString(), "--format", "onnx", "--method", "rtn", "--bits", "3", "--out", out);
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("--format onnx: 3-bit codes").contains("--bits 4 or 8");
        r = QuantCliTest.run(
                "quantize",
                "--in",
                in.toString(),
                "--format",
                "onnx",
                "--method",
                "rtn",
                "--group-size",
                "24",
                "--out",
                out);
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("group size 24").contains("a multiple of 16");
        r = QuantCliTest.run(
                "quantize",
                "--in",
                in.toString(),
                "--format",
                "onnx",
                "--method",
                "rtn",
                "--out",
                dir.resolve("q.safetensors").toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("must end in .onnx");
        Path npy = dir.resolve("w.npy");
        Npy.write(npy, new long[] {8, 64}, new float[8 * 64]);
        r = QuantCliTest.run("quantize", "--in", npy.toString(), "--format", "onnx", "--method", "rtn", "--out", out);
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("must be an .onnx file");
        r = QuantCliTest.run("quantize", "--in", in.toString(), "--format", "tflite", "--method", "rtn", "--out", out);
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("unknown --format 'tflite'");
        assertThat(files()).containsExactly("mm.onnx", "w.npy");
        String[] onnx = {"quantize", "--in", in.toString(), "--format", "onnx", "--out", out};
        r = QuantCliTest.run(concat(onnx, "--method", "rtn", "--accuracy-level", "2"));
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("--accuracy-level 2: 0 or 4");
        r = QuantCliTest.run(concat(onnx, "--method", "nf4", "--accuracy-level", "4"));
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("--accuracy-level 4: MatMulBnb4 (nf4, fp4) has no accuracy level");
        r = QuantCliTest.run(
                "quantize",
                "--in",
                in.toString(),
                "--method",
                "rtn",
                "--accuracy-level",
                "4",
                "--out",
                dir.resolve("q.safetensors").toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("--accuracy-level applies to --format onnx only");
        // GPTQ quantized as written: calibration activations of another width than the weight's 64 input features
        // are refused before anything is written
        Path wide = dir.resolve("x48.npy");
        Npy.write(wide, new long[] {10, 48}, new float[10 * 48]);
        r = QuantCliTest.run(concat(onnx, "--method", "gptq", "--group-size", "16", "--calib", wide.toString()));
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("--calib " + wide + " has 48 columns, tensor 'W' [8, 64] has 64 input features");
        assertThat(files()).containsExactly("mm.onnx", "w.npy", "x48.npy");
    }

    /**
     * {@code --accuracy-level 4}: MatMulNBits carries the attribute, and ONNX Runtime's product (int8 activations) is
     * close to, not equal to, the float32 one of level 0.
     */
    @Test
    void accuracyLevel4() throws Exception {
        int k = 128;
        int n = 8;
        Random rnd = new Random(21);
        float[] w = new float[k * n];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) rnd.nextGaussian();
        }
        Path in = dir.resolve("mm.onnx");
        Files.write(in, OnnxExportOrtTest.matMulModel(w, 3, k, n));
        float[][] a = new float[3][k];
        for (float[] row : a) {
            for (int c = 0; c < k; c++) {
                row[c] = (float) rnd.nextGaussian();
            }
        }
        float[][][] y = new float[2][][];
        for (int level : new int[] {0, 4}) {
            Path out = dir.resolve("q" + level + ".onnx");
            Result r = QuantCliTest.run(
                    "quantize",
                    "--in",
                    in.toString(),
                    "--format",
                    "onnx",
                    "--method",
                    "rtn",
                    "--group-size",
                    "32",
                    "--accuracy-level",
                    Integer.toString(level),
                    "--out",
                    out.toString());
            assertThat(r.code()).as(r.err()).isZero();
            y[level / 4] = OnnxExportOrtTest.runOrt(Files.readAllBytes(out), a);
        }
        assertThat(new String(Files.readAllBytes(dir.resolve("q4.onnx")), StandardCharsets.ISO_8859_1))
                .contains("accuracy_level");
        assertThat(new String(Files.readAllBytes(dir.resolve("q0.onnx")), StandardCharsets.ISO_8859_1))
                .doesNotContain("accuracy_level");
        double worst = 0;
        double mag = 0;
        for (int i = 0; i < 3; i++) {
            for (int j = 0; j < n; j++) {
                worst = Math.max(worst, Math.abs(y[1][i][j] - y[0][i][j]));
                mag = Math.max(mag, Math.abs(y[0][i][j]));
            }
        }
        assertThat(worst).isPositive().isLessThan(0.02 * mag);
    }
}
