package dev.quant4j.cli.eval;

import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.model.NextTokenMetrics;
import dev.quant4j.pipeline.DecoderQuantizer;
import dev.quant4j.pipeline.DecoderQuantizer.Method;
import dev.quant4j.pipeline.DecoderQuantizer.Setting;
import dev.quant4j.scheme.LinearScheme;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ForkJoinPool;
import java.util.function.IntConsumer;

/**
 * Quantizes a decoder language model with each setting and measures what its next-token predictions lose against the
 * FP32 model on held-out sequences: mean and 99th-percentile KL divergence per token, top-1 agreement and perplexity,
 * the statistics llama.cpp's {@code perplexity --kl-divergence} reports.
 */
public final class DecoderEval {

    private DecoderEval() {}

    /**
     * One setting's figures.
     *
     * @param bitsPerWeight storage of the quantized linears (codes, scales, zero points) per weight
     * @param linearBytes that storage in bytes
     */
    public record Row(Setting setting, double bitsPerWeight, long linearBytes, NextTokenMetrics.Summary metrics) {}

    /** The default settings of {@code quant eval --model}, in table order, with groups of {@code group} columns. */
    public static List<Setting> defaultSettings(int group) {
        return List.of(
                new Setting(Method.RTN, 8, LinearScheme.PER_CHANNEL, false, false),
                new Setting(Method.RTN, 4, group, false, false),
                new Setting(Method.NF4, 4, Math.max(32, group), false, false),
                new Setting(Method.GPTQ, 4, group, false, false),
                new Setting(Method.GPTQ, 4, group, false, true),
                new Setting(Method.GPTQ, 4, group, false, false, true),
                new Setting(Method.GPTQ, 4, group, false, true, true),
                new Setting(Method.AWQ, 4, group, false, false),
                new Setting(Method.AWQ_BLOCK, 4, group, false, false),
                new Setting(Method.RTN, 3, group, false, false),
                new Setting(Method.GPTQ, 3, group, false, true),
                new Setting(Method.GPTQ, 3, group, false, true, true));
    }

    /**
     * Runs every setting on {@code fp32}: quantized with {@code calibration} (GPTQ), then compared with the FP32
     * model's logits on each of {@code evaluation}. {@code progress} is told each setting's label before it starts.
     */
    public static List<Row> run(
            LlamaDecoder fp32,
            List<Setting> settings,
            List<int[]> calibration,
            List<int[]> evaluation,
            ForkJoinPool pool,
            java.util.function.Consumer<String> progress) {
        List<dev.quant4j.tensor.FloatMatrix> reference = new ArrayList<>();
        for (int[] seq : evaluation) {
            reference.add(fp32.logits(seq));
        }
        List<Row> rows = new ArrayList<>();
        for (Setting s : settings) {
            progress.accept(s.label());
            IntConsumer blocks = b -> {};
            DecoderQuantizer.Result q = new DecoderQuantizer(s, pool).quantize(fp32, calibration, blocks);
            NextTokenMetrics m = new NextTokenMetrics();
            for (int i = 0; i < evaluation.size(); i++) {
                m.add(evaluation.get(i), reference.get(i), q.model().logits(evaluation.get(i)));
            }
            rows.add(new Row(s, q.bitsPerWeight(), q.storageBytes(), m.summary()));
        }
        return rows;
    }

    /** A Markdown table of the rows, the FP32 perplexity in its first line. */
    public static String markdown(List<Row> rows) {
        StringBuilder b = new StringBuilder();
        b.append("| setting | bits/weight | KL mean (nats) | KL p99 | top-1 agreement | perplexity |\n");
        b.append("|---|---:|---:|---:|---:|---:|\n");
        if (!rows.isEmpty()) {
            b.append(String.format(
                    Locale.ROOT,
                    "| FP32 | 32 | 0 | 0 | 1 | %.3f |%n",
                    rows.get(0).metrics().pplReference()));
        }
        for (Row r : rows) {
            NextTokenMetrics.Summary m = r.metrics();
            b.append(String.format(
                    Locale.ROOT,
                    "| %s | %.3f | %.4f | %.3f | %.3f | %.3f |%n",
                    r.setting().label(),
                    r.bitsPerWeight(),
                    m.klMean(),
                    m.klP99(),
                    m.top1(),
                    m.pplQuantized()));
        }
        return b.toString();
    }

    /**
     * The rows as a JSON array, one object per setting with the keys {@code setting, method, bits, group_size,
     * bits_per_weight, kl_mean, kl_p99, top1, ppl} ({@code group_size} -1: per channel).
     */
    public static String json(List<Row> rows) {
        StringBuilder b = new StringBuilder("[\n");
        for (int i = 0; i < rows.size(); i++) {
            Row r = rows.get(i);
            Setting s = r.setting();
            NextTokenMetrics.Summary m = r.metrics();
            b.append(String.format(
                    Locale.ROOT,
                    "  {\"setting\": \"%s\", \"method\": \"%s\", \"bits\": %d, \"group_size\": %d,"
                            + " \"bits_per_weight\": %.4f, \"kl_mean\": %.6f, \"kl_p99\": %.6f, \"top1\": %.6f,"
                            + " \"ppl\": %.4f}%s%n",
                    s.label(),
                    s.method().name().toLowerCase(Locale.ROOT),
                    s.bits(),
                    s.groupSize(),
                    r.bitsPerWeight(),
                    m.klMean(),
                    m.klP99(),
                    m.top1(),
                    m.pplQuantized(),
                    i + 1 < rows.size() ? "," : ""));
        }
        return b.append("]\n").toString();
    }
}
