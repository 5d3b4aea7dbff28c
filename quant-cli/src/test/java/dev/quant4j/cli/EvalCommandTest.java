package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import dev.quant4j.cli.eval.EmbeddingEval;
import dev.quant4j.model.WordPieceTokenizer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code quant eval} on a few sentences, its metrics on hand-made vectors, and the WordNet data it reads. */
class EvalCommandTest {

    @TempDir
    Path dir;

    @Test
    void evalRunsOnAFewSentencesAndWritesItsTableAndChart() throws Exception {
        Path out = dir.resolve("eval");
        QuantCliTest.Result r = QuantCliTest.run(
                "eval",
                "--pairs",
                "12",
                "--calib",
                "8",
                "--settings",
                "RTN int8|GPTQ int4 g128$|ONNX|word embeddings",
                "--timing",
                "4",
                "--out",
                out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        String table = Files.readString(out.resolve("eval.md"));
        assertThat(table).isEqualTo(r.out());
        assertThat(table).contains("12 WordNet definition/example pairs (24 held-out sentences)");
        int second = table.indexOf("The exported models in ONNX Runtime 1.29.0");
        assertThat(second).isPositive();
        List<String> rows = table.substring(0, second)
                .lines()
                .filter(l -> l.startsWith("| ") && !l.startsWith("| setting"))
                .toList();
        assertThat(rows).hasSize(4);
        assertThat(rows.get(0)).startsWith("| FP32 | 32.000 |").contains("| 1.00000 | 1.0000 |");
        assertThat(rows.get(1)).startsWith("| RTN int8 per channel | 8.");
        assertThat(rows.get(2)).startsWith("| GPTQ int4 g128 | 4.3");
        // 8-bit per-channel weights keep the embeddings' direction almost exactly
        double meanCos = Double.parseDouble(rows.get(1).split("\\|")[5].trim());
        assertThat(meanCos).isGreaterThan(0.999);
        // the peer: ONNX Runtime's int8 twin, about 0.99 on the full set
        assertThat(rows.get(3)).startsWith("| ONNX Runtime int8 (the -q twin) | 8.0");
        assertThat(Double.parseDouble(rows.get(3).split("\\|")[5].trim())).isGreaterThan(0.97);
        assertThat(Files.size(out.resolve("eval.png"))).isGreaterThan(1000);

        // the second table: the same settings exported and run by ONNX Runtime, against FP32 in ONNX Runtime
        List<String[]> ort = table.substring(second)
                .lines()
                .filter(l -> l.startsWith("| ") && !l.startsWith("| model in"))
                .map(l -> l.split("\\|"))
                .toList();
        assertThat(ort.stream().map(c -> c[1].trim()))
                .containsExactly(
                        "FP32",
                        "FP32 linears, word embeddings int4 g128",
                        "FP32 linears, word embeddings int4 g128 sym (no zero-points)",
                        "RTN int8 per channel",
                        "RTN int8 per channel, accuracy_level 4",
                        "GPTQ int4 g128",
                        "GPTQ int4 g128, accuracy_level 4",
                        "ONNX Runtime int8 (the -q twin)");
        assertThat(ort.get(0)[2].trim()).isEqualTo("MatMul (float32)");
        assertThat(ort.get(0)[3].trim()).isEqualTo("90.39"); // the file as shipped
        assertThat(ort.get(0)[4].trim()).isEqualTo("1.00000");
        assertThat(ort.get(5)[2].trim()).isEqualTo("MatMulNBits");
        assertThat(ort.get(6)[2].trim()).isEqualTo("MatMulNBits, int8 activations");
        assertThat(ort.get(7)[3].trim()).isEqualTo("22.97");
        // 4-bit linears and word embeddings: about 13 MB, against the int8 twin's 23
        assertThat(Double.parseDouble(ort.get(5)[3].trim())).isBetween(12.5, 13.5);
        for (String[] row : ort) {
            assertThat(Double.parseDouble(row[4].trim())).as(row[1]).isGreaterThan(0.95);
            assertThat(Double.parseDouble(row[10].trim())).as(row[1]).isPositive(); // ms a sentence, timed
        }
        // 8-bit linears with 4-bit word embeddings: what is lost is the embeddings' share
        assertThat(Double.parseDouble(ort.get(3)[4].trim())).isGreaterThan(0.99);
    }

    /**
     * {@code quant quantize --in model.onnx}: the 36 MatMul weights of the real model, transposed to [out, in] and
     * quantized; every other initializer passes through in its own type (the INT64 position_ids included). {@code
     * quant dequantize} gives every weight back under its name in ONNX's stored [in, out] layout: each one close to
     * the original as stored (the square ones too, which a transposed result would fit in shape only).
     */
    @Test
    void quantizeReadsAWholeOnnxModelAndDequantizeRestoresItsLayout() throws Exception {
        Path model = dir.resolve("minilm.onnx");
        Files.write(model, EvalCommand.resource(EvalCommand.MODEL));
        Path q = dir.resolve("q.safetensors");
        QuantCliTest.Result r = QuantCliTest.run(
                "quantize",
                "--method",
                "rtn",
                "--bits",
                "4",
                "--group-size",
                "128",
                "--in",
                model.toString(),
                "--out",
                q.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("onnx::MatMul_864 [384 x 1536] linear 4-bit asym g128: 4.313 bits/weight");
        assertThat(r.out()).contains("(36 quantized, 66 unchanged)");
        Path back = dir.resolve("w.safetensors");
        r = QuantCliTest.run("dequantize", "--in", q.toString(), "--out", back.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("(36 tensors dequantized to F32, 66 unchanged)");
        dev.quant4j.io.OnnxModel onnx = dev.quant4j.io.OnnxModel.read(model);
        java.util.Set<String> matmul =
                new java.util.HashSet<>(onnx.matMulWeights().values());
        assertThat(matmul).hasSize(36);
        try (dev.quant4j.io.SafeTensors st = dev.quant4j.io.SafeTensors.open(back)) {
            assertThat(st.entries().keySet())
                    .containsExactlyInAnyOrderElementsOf(onnx.initializers().keySet());
            int square = 0;
            for (dev.quant4j.io.OnnxModel.Initializer t : onnx.initializers().values()) {
                dev.quant4j.io.SafeTensors.Entry e = st.entry(t.name());
                assertThat(e.shape()).as(t.name()).containsExactly(t.dims());
                assertThat(e.dtype()).as(t.name()).isEqualTo(t.dtype());
                if (!matmul.contains(t.name())) {
                    assertThat(st.readBytes(t.name())).as(t.name()).containsExactly(t.bytes()); // unchanged
                    continue;
                }
                float[] original = t.floats(); // [in, out], row-major, as ONNX stores it
                float[] w = st.readMatrix(t.name()).toArray();
                double dot = 0;
                double nw = 0;
                double no = 0;
                for (int i = 0; i < original.length; i++) {
                    dot += (double) w[i] * original[i];
                    nw += (double) w[i] * w[i];
                    no += (double) original[i] * original[i];
                }
                assertThat(dot / Math.sqrt(nw * no)).as(t.name()).isGreaterThan(0.99); // 4-bit g128: about 0.995
                square += t.dims()[0] == t.dims()[1] ? 1 : 0;
            }
            assertThat(square).isEqualTo(24);
            assertThat(st.entry("embeddings.position_ids").dtype()).isEqualTo(dev.quant4j.io.DType.I64);
        }
        r = QuantCliTest.run(
                "quantize",
                "--method",
                "nf4",
                "--in",
                model.toString(),
                "--include",
                "position_ids",
                "--out",
                dir.resolve("bad.safetensors").toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err())
                .contains("initializer 'embeddings.position_ids' matched by --include is not a 2-D float"
                        + " tensor (ONNX type INT64, shape [1, 512])");
        assertThat(Files.exists(dir.resolve("bad.safetensors"))).isFalse();
        // a truncated model file: a clear error naming it, and no output
        Path cut = dir.resolve("cut.onnx");
        Files.write(cut, java.util.Arrays.copyOf(Files.readAllBytes(model), 100_000));
        r = QuantCliTest.run(
                "quantize",
                "--method",
                "rtn",
                "--in",
                cut.toString(),
                "--out",
                dir.resolve("cut.safetensors").toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains(cut.toString()).contains("runs past the end");
        assertThat(Files.exists(dir.resolve("cut.safetensors"))).isFalse();
    }

    /** {@code quant report --in model.onnx}: the error per bit width on the real model's 36 linear weights. */
    @Test
    void reportOnTheRealModelsWeights() throws Exception {
        Path model = dir.resolve("minilm.onnx");
        Files.write(model, EvalCommand.resource(EvalCommand.MODEL));
        Path out = dir.resolve("report");
        QuantCliTest.Result r = QuantCliTest.run("report", "--in", model.toString(), "--out", out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        String report = Files.readString(out.resolve("report.md"));
        assertThat(report).contains("(36 tensors, 10616832 weights)");
        // SQNR rises with bits on real weights too (asym g128: 2, 3, 4, 6, 8 bits)
        List<Double> sqnr = report.lines()
                .filter(l -> l.startsWith("| asym | g128 |"))
                .map(l -> Double.parseDouble(l.split("\\|")[8].trim()))
                .toList();
        assertThat(sqnr).hasSize(5).isSorted();
        assertThat(sqnr.get(2)).isBetween(18.0, 21.0); // 4 bits: about 19.4 dB
    }

    @Test
    void badOptionsAreClearErrors() {
        QuantCliTest.Result r = QuantCliTest.run("eval", "--pairs", "5", "--out", dir.toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("--pairs must be 10..1200, got 5");
        r = QuantCliTest.run("eval", "--calib", "0", "--out", dir.toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("--calib must be 1..4011, got 0");
        r = QuantCliTest.run("eval", "--threads", "0", "--out", dir.toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("--threads must be at least 1, got 0");
        r = QuantCliTest.run("eval", "--timing", "-1", "--out", dir.toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("--timing must be 0 (no timing) or more sentences, got -1");
    }

    /** Ranks by hand: query 0 finds its document first, query 1 second (a tie counts against it), query 2 third. */
    @Test
    void retrievalMetricsOnHandMadeVectors() {
        float[][] q = {{1, 0}, {0, 1}, {1, 1}};
        float[][] d = {{1, 0.1f}, {1, 1}, {0, 1}};
        // query 1 (0,1): own doc (1,1) cos 0.707; doc 2 (0,1) cos 1 -> rank 2
        // query 2 (1,1): own doc (0,1) cos 0.707; doc 1 (1,1) cos 1, doc 0 (1,0.1) cos 0.77 -> rank 3
        EmbeddingEval.Retrieval r = EmbeddingEval.retrieval(q, d);
        assertThat(r.recallAt1()).isCloseTo(1 / 3.0, within(1e-12));
        assertThat(r.recallAt10()).isEqualTo(1.0);
        assertThat(r.mrr()).isCloseTo((1 + 1 / 2.0 + 1 / 3.0) / 3, within(1e-12));
        float[][] tie = {{1, 0}, {1, 0}};
        assertThat(EmbeddingEval.retrieval(tie, tie).mrr()).isCloseTo(0.5, within(1e-12)); // ties rank below
        double[] stats = EmbeddingEval.cosineStats(q, new float[][] {{2, 0}, {0, -1}, {1, 1}});
        assertThat(stats[0]).isCloseTo(1 / 3.0, within(1e-12));
        assertThat(stats[1]).isEqualTo(-1.0);
    }

    /**
     * The WordNet data: calibration and evaluation are disjoint and every example is unique; our tokenizer gives
     * HuggingFace's ids (DJL) on all 6,411 real sentences.
     */
    @Test
    void wordNetDataIsDisjointAndTokenizesAsHuggingFaceDoes() throws Exception {
        List<String> calibration = EvalCommand.lines("/wordnet/calibration.txt");
        List<String[]> pairs = new ArrayList<>();
        for (String l : EvalCommand.lines("/wordnet/pairs.tsv")) {
            pairs.add(l.split("\t", 2));
        }
        assertThat(calibration).hasSize(4011).doesNotHaveDuplicates();
        assertThat(pairs).hasSize(1200);
        List<String> examples = pairs.stream().map(p -> p[1]).toList();
        assertThat(examples).doesNotHaveDuplicates();
        List<String> eval = new ArrayList<>(examples);
        pairs.forEach(p -> eval.add(p[0]));
        assertThat(eval).doesNotContainAnyElementsOf(calibration);
        assertThat(new String(EvalCommand.resource("/wordnet/LICENSE"), StandardCharsets.UTF_8))
                .contains("WordNet 3.0 Copyright 2006 by Princeton University");

        String json = new String(EvalCommand.resource(EvalCommand.TOKENIZER), StandardCharsets.UTF_8);
        WordPieceTokenizer ours = WordPieceTokenizer.parse("tokenizer.json", json);
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, json);
        List<String> all = new ArrayList<>(calibration);
        all.addAll(eval);
        try (HuggingFaceTokenizer hf = HuggingFaceTokenizer.newInstance(
                file, Map.of("padding", "false", "truncation", "true", "maxLength", "128"))) {
            for (String s : all) {
                assertThat(Arrays.stream(ours.encode(s)).asLongStream().toArray())
                        .as(s)
                        .containsExactly(hf.encode(s).getIds());
            }
        }
        assertThat(all).hasSize(4011 + 2400);
    }

    /** The chart names the compact row by its short name: its whole description, rotated, squeezed the plot to a strip. */
    @Test
    void theChartsLabelsAreShort() {
        EmbeddingEval.Retrieval r = new EmbeddingEval.Retrieval(0.2, 0.5, 0.3);
        List<EvalCommand.Row> rows = List.of(
                new EvalCommand.Row("FP32", 32, 0, 0, 1, 1, r, 0),
                new EvalCommand.Row(
                        "compact: GPTQ int4 g64 act-order mse true-sequential, words int4 g64",
                        4.7,
                        0,
                        0,
                        0.99,
                        0.96,
                        r,
                        0));
        var chart = EvalCommand.chart(rows);
        assertThat(List.copyOf(chart.getSeries("mean cosine").getXData())).isEqualTo(List.of("FP32", "compact"));
    }
}
