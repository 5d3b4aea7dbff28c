package dev.quant4j.cli.eval;

import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.model.NextTokenMetrics;
import dev.quant4j.pipeline.DecoderQuantizer;
import dev.quant4j.pipeline.DecoderQuantizer.Method;
import dev.quant4j.pipeline.DecoderQuantizer.Setting;
import dev.quant4j.scheme.LinearScheme;
import java.awt.Color;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ForkJoinPool;
import java.util.function.IntConsumer;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.Styler;

/**
 * Quantizes a decoder language model with each setting and measures what its next-token predictions lose against the
 * FP32 model on held-out sequences: mean and 99th-percentile KL divergence per token, top-1 agreement and perplexity,
 * the statistics llama.cpp's {@code perplexity --kl-divergence} reports.
 */
public final class DecoderEval {

    private DecoderEval() {}

    /**
     * One row's figures: a setting quantized here, or a quantized model read from a file.
     *
     * @param label the setting's label, or the file's name
     * @param method {@code rtn}, {@code nf4}, {@code gptq}, {@code awq}, {@code awq_block}; {@code gguf} for a GGUF
     *     file, {@code quant4j} for a quant4j file made by several methods
     * @param bits bits of a code (16 or 32 for a float type)
     * @param groupSize columns per scale (-1 per channel); for a GGUF file ggml's block size, 0 for a float type
     * @param bitsPerWeight storage of the quantized block linears (codes, scales, zero points) per weight
     * @param linearBytes that storage in bytes
     * @param type the GGUF type of most block-linear weights, or null for other rows
     */
    public record Row(
            String label,
            String method,
            int bits,
            int groupSize,
            double bitsPerWeight,
            long linearBytes,
            String type,
            NextTokenMetrics.Summary metrics) {

        /** The row of a setting quantized by {@link DecoderQuantizer}. */
        public static Row of(Setting s, double bitsPerWeight, long linearBytes, NextTokenMetrics.Summary metrics) {
            return new Row(
                    s.label(),
                    s.method().name().toLowerCase(Locale.ROOT),
                    s.bits(),
                    s.groupSize(),
                    bitsPerWeight,
                    linearBytes,
                    null,
                    metrics);
        }
    }

    /**
     * A quantized model made elsewhere (a GGUF file, a quant4j file), measured as a row of its own.
     *
     * @param model the decoder on the file's weights
     * @param row its row's fields, with no metrics yet
     */
    public record Candidate(LlamaDecoder model, Row row) {}

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
        return run(fp32, settings, calibration, evaluation, List.of(), pool, progress);
    }

    /**
     * As {@link #run(LlamaDecoder, List, List, List, ForkJoinPool, java.util.function.Consumer)}, then each of {@code
     * files} compared with the FP32 model on the same sequences, a row each after the settings' rows.
     */
    public static List<Row> run(
            LlamaDecoder fp32,
            List<Setting> settings,
            List<int[]> calibration,
            List<int[]> evaluation,
            List<Candidate> files,
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
            rows.add(Row.of(s, q.bitsPerWeight(), q.storageBytes(), m.summary()));
        }
        for (Candidate c : files) {
            progress.accept(c.row().label());
            NextTokenMetrics m = new NextTokenMetrics();
            for (int i = 0; i < evaluation.size(); i++) {
                m.add(evaluation.get(i), reference.get(i), c.model().logits(evaluation.get(i)));
            }
            Row r = c.row();
            rows.add(new Row(
                    r.label(),
                    r.method(),
                    r.bits(),
                    r.groupSize(),
                    r.bitsPerWeight(),
                    r.linearBytes(),
                    r.type(),
                    m.summary()));
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
                    r.label(),
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
     * bits_per_weight, kl_mean, kl_p99, top1, ppl} ({@code group_size} -1: per channel), and {@code gguf_type} after
     * {@code group_size} for a GGUF file's row.
     */
    public static String json(List<Row> rows) {
        StringBuilder b = new StringBuilder("[\n");
        for (int i = 0; i < rows.size(); i++) {
            Row r = rows.get(i);
            NextTokenMetrics.Summary m = r.metrics();
            b.append(String.format(
                    Locale.ROOT,
                    "  {\"setting\": %s, \"method\": \"%s\", \"bits\": %d, \"group_size\": %d,%s"
                            + " \"bits_per_weight\": %.4f, \"kl_mean\": %.6f, \"kl_p99\": %.6f, \"top1\": %.6f,"
                            + " \"ppl\": %.4f}%s%n",
                    jsonString(r.label()),
                    r.method(),
                    r.bits(),
                    r.groupSize(),
                    r.type() == null ? "" : " \"gguf_type\": \"" + r.type() + "\",",
                    r.bitsPerWeight(),
                    m.klMean(),
                    m.klP99(),
                    m.top1(),
                    m.pplQuantized(),
                    i + 1 < rows.size() ? "," : ""));
        }
        return b.append("]\n").toString();
    }

    /** The width of {@link #chart}'s image in pixels. */
    public static final int CHART_WIDTH = 1000;

    /** The height of {@link #chart}'s image in pixels. */
    public static final int CHART_HEIGHT = 600;

    /**
     * KL divergence to FP32 (mean per token, log scale) against bits per weight: one series per method ({@code RTN},
     * {@code GPTQ act-order}, {@code GPTQ act-order mse}, ...; a file is a series of its own, named after it), its points joined in order of bits.
     * A row whose KL divergence is not positive (the FP32 model itself, read back from a file) has no place on a log
     * scale and is left out, the title says how many.
     */
    public static XYChart chart(List<Row> rows, String model) {
        XYChart chart = new XYChartBuilder()
                .width(CHART_WIDTH)
                .height(CHART_HEIGHT)
                .title(model + ": next-token KL divergence to FP32 against storage")
                .xAxisTitle("bits per weight of the block linears (codes, scales, zero points)")
                .yAxisTitle("KL divergence, mean per token (nats, log scale)")
                .build();
        chart.getStyler().setLocale(Locale.ROOT);
        chart.getStyler().setChartBackgroundColor(Color.WHITE);
        chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
        chart.getStyler().setMarkerSize(9);
        chart.getStyler().setPlotGridLinesColor(new Color(0xDDDDDD));
        chart.getStyler().setXAxisDecimalPattern("0.##");
        List<Row> drawn = rows.stream().filter(r -> r.metrics().klMean() > 0).toList();
        if (drawn.size() < rows.size()) {
            chart.setTitle(chart.getTitle() + " (" + (rows.size() - drawn.size()) + " with KL 0 not drawn)");
        }
        if (drawn.isEmpty()) {
            return chart; // nothing on a log scale: an empty plot with its title
        }
        chart.getStyler().setYAxisLogarithmic(true);
        Map<String, List<Row>> series = new LinkedHashMap<>();
        for (Row r : drawn) {
            series.computeIfAbsent(seriesName(r), k -> new ArrayList<>()).add(r);
        }
        for (Map.Entry<String, List<Row>> e : series.entrySet()) {
            List<Row> points = new ArrayList<>(e.getValue());
            points.sort(Comparator.comparingDouble(Row::bitsPerWeight));
            chart.addSeries(
                    e.getKey(),
                    points.stream().mapToDouble(Row::bitsPerWeight).toArray(),
                    points.stream().mapToDouble(r -> r.metrics().klMean()).toArray());
        }
        return chart;
    }

    /** The series a row belongs to: its method (sym, act-order and mse apart), or a file's own name. */
    static String seriesName(Row r) {
        String method = switch (r.method()) {
            case "rtn" -> "RTN";
            case "nf4" -> "NF4";
            case "gptq" -> "GPTQ";
            case "awq" -> "AWQ";
            case "awq_block" -> "AWQ block";
            default -> null;
        };
        if (method == null) {
            return r.label();
        }
        String l = r.label();
        return method
                + (l.contains(" sym") ? " sym" : "")
                + (l.contains(" act-order") ? " act-order" : "")
                + (l.endsWith(" mse") ? " mse" : "");
    }

    /** {@code v} as a JSON string literal (a file name may hold quotes or backslashes). */
    static String jsonString(String v) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : v.toCharArray()) {
            if (c == '"' || c == '\\') {
                b.append('\\').append(c);
            } else if (c < 0x20) {
                b.append(String.format(Locale.ROOT, "\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        return b.append('"').toString();
    }
}
