package dev.quant4j.cli;

import dev.quant4j.codebook.BlockwiseQuantizer;
import dev.quant4j.io.AtomicFiles;
import dev.quant4j.kernel.Kernels;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.quant.CodebookTensor;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.QuantScheme;
import dev.quant4j.study.BitWidthStudy;
import dev.quant4j.tensor.FloatMatrix;
import java.awt.Color;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.regex.Pattern;
import javax.imageio.ImageIO;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.internal.chartpart.Chart;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.lines.SeriesLines;
import org.knowm.xchart.style.markers.Marker;
import org.knowm.xchart.style.markers.SeriesMarkers;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(
        name = "report",
        mixinStandardHelpOptions = true,
        description = {
            "Error and speed per bit width of round-to-nearest linear quantization and of NF4/FP4: a"
                    + " Markdown table and three plots.",
            "Schemes: 2, 3, 4, 6 and 8 bits, asym, sym and signed, per channel and per group of 128;"
                    + " NF4 and FP4, block 64.",
            "Writes four files to DIR (--out):",
            "  report.md          the error table (also on stdout) and a throughput table",
            "  error-vs-bits.png  SQNR against bits per weight as stored, one line per form",
            "  histogram.png      the first tensor before and after RTN 4-bit asym g128 (per",
            "                     channel if 128 does not divide its columns), log counts",
            "  throughput.png     quantize and dequantize GiB/s, one thread, by bits/weight",
            "Bits per weight as stored: the codes plus each group's float32 scale and 8-bit"
                    + " zero-point, or each block's float32 absmax.",
            "Without --in: built-in weights, 1024 x 1024 samples of N(0, 0.15^2) (SplitMix64 seed 42," + " Box-Muller)."
        })
final class ReportCommand implements Callable<Integer> {

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(
            names = "--in",
            description = "weights: W.npy, model.safetensors or model.onnx (its MatMul weights) (default: built-in"
                    + " data)")
    Path in;

    @Option(names = "--out", defaultValue = "report", description = "output folder (default ${DEFAULT-VALUE})")
    Path outDir;

    @Option(names = "--include", description = "regular expression: which 2-D tensors of a model file to study")
    String include;

    @Override
    public Integer call() throws Exception {
        List<FloatMatrix> tensors;
        String source;
        if (in == null) {
            tensors = List.of(BitWidthStudy.noteWeights());
            source = "built-in " + BitWidthStudy.NOTE_ROWS + " x " + BitWidthStudy.NOTE_COLS
                    + " weights, N(0, 0.15^2), SplitMix64 seed 42";
        } else {
            tensors = WeightFiles.load(in, include == null ? null : Pattern.compile(include), (name, shape) -> null)
                    .tensors();
            source = in + " (" + tensors.size() + " tensors, "
                    + tensors.stream().mapToLong(FloatMatrix::size).sum() + " weights)";
        }
        if (Files.exists(outDir) && !Files.isDirectory(outDir)) {
            throw new IllegalArgumentException("--out " + outDir + " exists and is not a folder");
        }
        List<QuantScheme> schemes = new ArrayList<>();
        for (LinearScheme s : BitWidthStudy.noteSchemes()) {
            if (tensors.stream().allMatch(t -> s.groupSize() <= 0 || t.cols() % s.groupSize() == 0)) {
                schemes.add(s);
            }
        }
        schemes.addAll(BitWidthStudy.codebookSchemes());
        List<BitWidthStudy.Row> rows = BitWidthStudy.run(tensors, schemes);
        String table = markdown(rows);
        String md = "# quant4j report\n\nWeights: " + source + ".\nKernels: "
                + Kernels.get().name()
                + ".\n\nError of round-to-nearest linear quantization and of NF4/FP4 (dequantized vs original)."
                + " Bits/weight counts the packed codes plus, per group, a float32 scale and an 8-bit zero-point"
                + " (linear) or a float32 absmax (NF4/FP4).\n\n" + table
                + "\n![SQNR against bits per weight](error-vs-bits.png)\n\n![weights before and after RTN 4-bit (log"
                + " counts)](histogram.png)\n";
        FloatMatrix timed = tensors.get(0);
        List<Throughput> speeds = throughput(timed);
        String report = md + "\n## Throughput per bit width\n\nOne thread, on '" + timed.name() + "' (" + timed.size()
                + " weights), GiB/s of float32, the best of " + TIMING_REPS + " wall-clock runs after a warm-up:"
                + " indicative only; the JMH figures (`./bench`) are in docs/benchmarks.md.\n\n"
                + throughputTable(speeds) + "\n![throughput](throughput.png)\n";
        PrintWriter pw = spec.commandLine().getOut();
        pw.print(table);
        FloatMatrix first = tensors.get(0);
        LinearScheme histScheme = first.cols() % 128 == 0 ? LinearScheme.asym(4, 128) : LinearScheme.asym(4, -1);
        FloatMatrix deq = new RtnQuantizer(histScheme).quantize(first).dequantize();
        // every plot drawn before any file is written: a chart that cannot be drawn leaves no report behind
        BufferedImage errorPng = BitmapEncoder.getBufferedImage(errorChart(rows));
        BufferedImage histogramPng = BitmapEncoder.getBufferedImage(histogram(first, deq, histScheme));
        BufferedImage throughputPng = BitmapEncoder.getBufferedImage(throughputChart(speeds));
        Files.createDirectories(outDir);
        AtomicFiles.write(outDir.resolve("report.md"), o -> o.write(report.getBytes(StandardCharsets.UTF_8)));
        writePng(errorPng, outDir.resolve("error-vs-bits.png"));
        writePng(histogramPng, outDir.resolve("histogram.png"));
        writePng(throughputPng, outDir.resolve("throughput.png"));
        pw.printf(
                Locale.ROOT,
                "%nwrote %s, %s, %s, %s%n",
                outDir.resolve("report.md"),
                outDir.resolve("error-vs-bits.png"),
                outDir.resolve("histogram.png"),
                outDir.resolve("throughput.png"));
        return Quant.OK;
    }

    static final int TIMING_REPS = 7;

    /** Quantize and dequantize speed of one scheme, GiB/s of float32, and its stored bits per weight. */
    record Throughput(String scheme, int bits, double bitsPerWeight, double quantize, double dequantize) {}

    /** Times RTN (asymmetric, group 128 or per channel) at 2, 3, 4 and 8 bits and NF4/FP4 (block 64), one thread. */
    static List<Throughput> throughput(FloatMatrix w) {
        List<Throughput> out = new ArrayList<>();
        double gib = w.size() * 4.0 / (1L << 30);
        float[] buffer = new float[Math.toIntExact(w.size())];
        java.util.concurrent.ForkJoinPool one = new java.util.concurrent.ForkJoinPool(1);
        try {
            int g = w.cols() % 128 == 0 ? 128 : LinearScheme.PER_CHANNEL;
            for (int bits : new int[] {2, 3, 4, 8}) {
                RtnQuantizer q = new RtnQuantizer(LinearScheme.asym(bits, g), one);
                QuantizedTensor t = q.quantize(w);
                double qs = bestSeconds(() -> q.quantize(w));
                double ds = bestSeconds(() -> t.dequantizeInto(buffer, 0));
                out.add(new Throughput(
                        LinearScheme.asym(bits, g).toString(), bits, t.bitsPerWeight(), gib / qs, gib / ds));
            }
            for (CodebookScheme cs : BitWidthStudy.codebookSchemes()) {
                BlockwiseQuantizer q = new BlockwiseQuantizer(cs);
                CodebookTensor t = q.quantize(w);
                double qs = bestSeconds(() -> q.quantize(w));
                double ds = bestSeconds(() -> t.dequantizeInto(buffer, 0));
                out.add(new Throughput(cs.toString(), 4, t.bitsPerWeight(), gib / qs, gib / ds));
            }
        } finally {
            one.shutdown();
        }
        return out;
    }

    /**
     * Warm-up by time, not by count: a few runs of a million weights take milliseconds, too few for the JIT to compile
     * the row kernels (three runs gave RTN 4-bit 2.8 GiB/s against 8.9 in JMH), so the code runs for {@link
     * #WARM_UP_NANOS} first.
     */
    static final long WARM_UP_NANOS = 150_000_000L;

    private static double bestSeconds(Runnable r) {
        long start = System.nanoTime();
        for (int i = 0; i < 3 || System.nanoTime() - start < WARM_UP_NANOS; i++) {
            r.run(); // warm-up
        }
        double best = Double.MAX_VALUE;
        for (int i = 0; i < TIMING_REPS; i++) {
            long t0 = System.nanoTime();
            r.run();
            best = Math.min(best, (System.nanoTime() - t0) * 1e-9);
        }
        return best;
    }

    static String throughputTable(List<Throughput> speeds) {
        StringBuilder b = new StringBuilder("| scheme | quantize GiB/s | dequantize GiB/s |\n|---|---:|---:|\n");
        for (Throughput t : speeds) {
            b.append(String.format(Locale.ROOT, "| %s | %.2f | %.2f |%n", t.scheme(), t.quantize(), t.dequantize()));
        }
        return b.toString();
    }

    /**
     * Colours that stay apart for colour-blind readers (Okabe and Ito's palette, its yellow replaced by grey, which
     * shows on white), one per series of a chart, with {@link #MARKERS}: no two series of a chart share either.
     */
    static final Color[] COLOURS = {
        new Color(0x0072B2), // blue
        new Color(0x56B4E9), // sky blue
        new Color(0xD55E00), // vermillion
        new Color(0xE69F00), // orange
        new Color(0x009E73), // bluish green
        new Color(0x888888), // grey
        new Color(0xCC79A7), // reddish purple
        new Color(0x000000) // black
    };

    /** One marker per series, in the order of {@link #COLOURS}; the filled shapes last, for single points. */
    static final Marker[] MARKERS = {
        SeriesMarkers.CIRCLE,
        SeriesMarkers.SQUARE,
        SeriesMarkers.TRIANGLE_DOWN,
        SeriesMarkers.TRIANGLE_UP,
        SeriesMarkers.CROSS,
        SeriesMarkers.PLUS,
        SeriesMarkers.DIAMOND,
        SeriesMarkers.TRAPEZOID
    };

    /** Series {@code i}'s colour and marker, for line and markers alike. */
    private static XYSeries style(XYSeries s, int i) {
        return style(s, i, MARKERS[i]);
    }

    private static XYSeries style(XYSeries s, int colour, Marker marker) {
        s.setLineColor(COLOURS[colour]);
        s.setMarkerColor(COLOURS[colour]);
        s.setMarker(marker);
        return s;
    }

    private static XYChart chart(String title, String xTitle, String yTitle) {
        XYChart chart = new XYChartBuilder()
                .width(1000)
                .height(600)
                .title(title)
                .xAxisTitle(xTitle)
                .yAxisTitle(yTitle)
                .build();
        chart.getStyler().setLocale(Locale.ROOT);
        chart.getStyler().setChartBackgroundColor(Color.WHITE);
        chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
        chart.getStyler().setMarkerSize(9);
        chart.getStyler().setPlotGridLinesColor(new Color(0xDDDDDD));
        return chart;
    }

    /**
     * Makes XChart put its ticks at round numbers. When the x values of all series, with the axis ends, are equally
     * spaced (a histogram's bins), XChart puts the ticks on data points instead (-0.7458, -0.6187, ...); a series
     * with one NaN point, drawn as nothing and left out of the legend and the axis range, breaks that spacing.
     */
    private static void roundTicks(XYChart chart) {
        chart.addSeries(TICK_GUARD, new double[] {Double.NaN}, new double[] {Double.NaN})
                .setMarker(SeriesMarkers.NONE)
                .setShowInLegend(false);
    }

    /** The name of {@link #roundTicks}' empty series. */
    static final String TICK_GUARD = "(round ticks)";

    /**
     * A round tick step for {@code span} in about {@code ticks} steps: 1, 2, 2.5 or 5 times a power of ten.
     */
    static double roundStep(double span, int ticks) {
        double raw = span / ticks;
        double power = Math.pow(10, Math.floor(Math.log10(raw)));
        for (double m : new double[] {1, 2, 2.5, 5}) {
            if (m * power >= raw * (1 - 1e-9)) {
                return m * power;
            }
        }
        return 10 * power;
    }

    /** {@code v} rounded down ({@code up == false}) or up to a multiple of {@code step}, without float residue. */
    static double roundTo(double v, double step, boolean up) {
        double k = up ? Math.ceil(v / step - 1e-9) : Math.floor(v / step + 1e-9);
        return new java.math.BigDecimal(k)
                .multiply(java.math.BigDecimal.valueOf(step))
                .doubleValue();
    }

    /** Axis ends at whole multiples of a round step around the data. */
    private static void roundRange(XYChart chart, double lo, double hi, boolean x, int ticks) {
        double step = roundStep(Math.max(hi - lo, 1e-12), ticks);
        double min = roundTo(lo, step, false);
        double max = roundTo(hi, step, true);
        if (x) {
            chart.getStyler().setXAxisMin(min).setXAxisMax(max);
        } else {
            chart.getStyler().setYAxisMin(min).setYAxisMax(max);
        }
    }

    static XYChart throughputChart(List<Throughput> speeds) {
        XYChart chart = chart(
                "Quantize and dequantize speed (one thread, " + Kernels.get().name() + ")",
                "bits per weight as stored",
                "GiB/s of float32");
        List<Throughput> linear =
                speeds.stream().filter(t -> t.scheme().startsWith("linear")).toList();
        int i = 0;
        for (boolean quantize : new boolean[] {true, false}) {
            double[] x = linear.stream().mapToDouble(Throughput::bitsPerWeight).toArray();
            double[] y = linear.stream()
                    .mapToDouble(t -> quantize ? t.quantize() : t.dequantize())
                    .toArray();
            String g = linear.isEmpty() ? "" : " " + linear.get(0).scheme().replaceAll(".* ", "");
            style(chart.addSeries("RTN asym" + g + (quantize ? " quantize" : " dequantize"), x, y), i++)
                    .setLineStyle(quantize ? SeriesLines.SOLID : SeriesLines.DASH_DASH);
        }
        // single points: the filled shapes, which show alone
        Marker[] filled = {
            SeriesMarkers.DIAMOND, SeriesMarkers.TRIANGLE_UP, SeriesMarkers.TRAPEZOID, SeriesMarkers.TRIANGLE_DOWN
        };
        int[] colours = {6, 2, 7, 3};
        int k = 0;
        for (Throughput t : speeds) {
            if (!t.scheme().startsWith("linear")) { // NF4 and FP4: four colours and shapes for the two
                double[] x = {t.bitsPerWeight()};
                XYSeries q = chart.addSeries(t.scheme() + " quantize", x, new double[] {t.quantize()});
                style(q, colours[k % 4], filled[k++ % 4]);
                XYSeries d = chart.addSeries(t.scheme() + " dequantize", x, new double[] {t.dequantize()});
                style(d, colours[k % 4], filled[k++ % 4]);
            }
        }
        double xMin =
                speeds.stream().mapToDouble(Throughput::bitsPerWeight).min().orElse(0);
        double xMax =
                speeds.stream().mapToDouble(Throughput::bitsPerWeight).max().orElse(1);
        chart.getStyler().setXAxisMin(Math.floor(2 * xMin) / 2).setXAxisMax(Math.ceil(2 * xMax) / 2);
        double yMax = speeds.stream()
                .mapToDouble(t -> Math.max(t.quantize(), t.dequantize()))
                .max()
                .orElse(1);
        chart.getStyler().setYAxisMin(0.0);
        roundRange(chart, 0, yMax, false, 8);
        chart.getStyler().setXAxisDecimalPattern("0.##").setYAxisDecimalPattern("0.##");
        roundTicks(chart);
        return chart;
    }

    static String markdown(List<BitWidthStudy.Row> rows) {
        StringBuilder b = new StringBuilder();
        b.append("| form | granularity | bits | bits/weight | MSE | MAE | max abs | SQNR (dB) |\n");
        b.append("|---|---|---:|---:|---:|---:|---:|---:|\n");
        for (BitWidthStudy.Row r : rows) {
            b.append(String.format(
                    Locale.ROOT,
                    "| %s | %s | %d | %.3f | %.3e | %.3e | %.3e | %.2f |%n",
                    r.form(),
                    r.granularity(),
                    r.scheme().bits(),
                    r.bitsPerWeight(),
                    r.metrics().mse(),
                    r.metrics().mae(),
                    r.metrics().maxAbs(),
                    r.metrics().sqnrDb()));
        }
        return b.toString();
    }

    /**
     * SQNR against bits per weight as stored, one series per form and granularity (RTN lines at 2, 3, 4, 6, 8 bits;
     * NF4 and FP4 single points): x is each row's {@link BitWidthStudy.Row#bitsPerWeight()}, increasing along a
     * series. Per-channel lines solid, per-group dashed; every series its own colour and marker.
     */
    static XYChart errorChart(List<BitWidthStudy.Row> all) {
        XYChart chart = chart(
                "SQNR against bits per weight: linear round-to-nearest, and NF4/FP4 codebooks",
                "bits per weight as stored (codes + per-group scale and zero-point, or absmax)",
                "SQNR (dB), higher is better");
        // an exact reconstruction (a constant tensor) has an infinite SQNR: no point to draw
        List<BitWidthStudy.Row> rows =
                all.stream().filter(r -> Double.isFinite(r.metrics().sqnrDb())).toList();
        if (rows.isEmpty()) {
            chart.setTitle(chart.getTitle() + " (every scheme exact: nothing to draw)");
        } else if (rows.size() < all.size()) {
            chart.setTitle(chart.getTitle() + " (" + (all.size() - rows.size()) + " exact: not drawn)");
        }
        Map<String, List<BitWidthStudy.Row>> series = new LinkedHashMap<>();
        for (BitWidthStudy.Row r : rows) {
            String name = r.scheme() instanceof LinearScheme
                    ? "RTN " + r.form() + " " + r.granularity()
                    : r.form().toUpperCase(Locale.ROOT) + " " + r.granularity();
            series.computeIfAbsent(name, k -> new ArrayList<>()).add(r);
        }
        java.util.Set<Integer> used = new java.util.HashSet<>();
        for (Map.Entry<String, List<BitWidthStudy.Row>> e : series.entrySet()) {
            List<BitWidthStudy.Row> points = new ArrayList<>(e.getValue());
            points.sort(java.util.Comparator.comparingDouble(BitWidthStudy.Row::bitsPerWeight));
            double[] x = points.stream()
                    .mapToDouble(BitWidthStudy.Row::bitsPerWeight)
                    .toArray();
            double[] y = points.stream().mapToDouble(r -> r.metrics().sqnrDb()).toArray();
            // the same colour and marker for a series whichever others are drawn beside it
            int i = styleIndex(points.get(0).scheme());
            while (!used.add(i % COLOURS.length)) {
                i++;
            }
            XYSeries s = style(chart.addSeries(e.getKey(), x, y), i % COLOURS.length);
            boolean perGroup = points.get(0).scheme() instanceof LinearScheme l && l.groupSize() > 0;
            s.setLineStyle(perGroup ? SeriesLines.DASH_DASH : SeriesLines.SOLID);
        }
        double xMin = rows.stream()
                .mapToDouble(BitWidthStudy.Row::bitsPerWeight)
                .min()
                .orElse(0);
        double xMax = rows.stream()
                .mapToDouble(BitWidthStudy.Row::bitsPerWeight)
                .max()
                .orElse(1);
        chart.getStyler().setXAxisMin(Math.floor(2 * xMin) / 2).setXAxisMax(Math.ceil(2 * xMax) / 2);
        double yMin = rows.stream().mapToDouble(r -> r.metrics().sqnrDb()).min().orElse(0);
        double yMax = rows.stream().mapToDouble(r -> r.metrics().sqnrDb()).max().orElse(1);
        chart.getStyler().setYAxisMin(Math.min(0, 5 * Math.floor(yMin / 5))).setYAxisMax(5 * Math.ceil(yMax / 5));
        chart.getStyler().setXAxisDecimalPattern("0.##").setYAxisDecimalPattern("0.##");
        roundTicks(chart);
        return chart;
    }

    /**
     * A series' place in {@link #COLOURS} and {@link #MARKERS}: asym, sym, signed per channel and per group, then NF4
     * and FP4 (their filled shapes).
     */
    static int styleIndex(QuantScheme scheme) {
        return switch (scheme) {
            case LinearScheme l -> 2 * l.symmetry().ordinal() + (l.groupSize() > 0 ? 1 : 0);
            case CodebookScheme c -> 6 + c.codebook().ordinal();
        };
    }

    /** Where a histogram's empty bins are drawn: below its log axis (which starts at {@link #HIST_Y_MIN}), clipped. */
    static final double EMPTY_BIN = 0.1;

    static final double HIST_Y_MIN = 0.5;

    /**
     * The original weights and the dequantized ones as step lines over the same 200 bins, counts on a log scale: the
     * dequantized weights pile onto a few levels (the bin holding 0 can hold seven times the original's tallest bin),
     * which on a linear scale flattens the original to a line along the bottom. The dequantized series is drawn first,
     * the original over it.
     */
    static XYChart histogram(FloatMatrix before, FloatMatrix after, LinearScheme scheme) {
        float[] a = before.toArray();
        float[] b = after.toArray();
        double lo = Double.MAX_VALUE;
        double hi = -Double.MAX_VALUE;
        for (float v : a) {
            lo = Math.min(lo, v);
            hi = Math.max(hi, v);
        }
        if (hi == lo) { // a constant tensor: one bin in the middle
            lo -= 0.5;
            hi += 0.5;
        }
        int bins = 200;
        double width = (hi - lo) / bins;
        double[] countA = new double[bins];
        double[] countB = new double[bins];
        for (float v : a) {
            countA[bin(v, lo, width, bins)]++;
        }
        for (float v : b) {
            countB[bin(v, lo, width, bins)]++;
        }
        XYChart chart = chart(
                "Weights of '" + before.name() + "' before and after RTN " + scheme.bits() + "-bit "
                        + scheme.symmetry().id() + " " + scheme.granularity() + " (" + bins + " bins)",
                "weight value",
                "weights per bin (log scale)");
        chart.getStyler().setYAxisLogarithmic(true).setYAxisLogarithmicDecadeOnly(true);
        chart.getStyler().setYAxisDecimalPattern("#,##0").setXAxisDecimalPattern("0.###");
        double peak = 0;
        for (int i = 0; i < bins; i++) {
            peak = Math.max(peak, Math.max(countA[i], countB[i]));
        }
        chart.getStyler().setYAxisMin(HIST_Y_MIN).setYAxisMax(2 * Math.max(peak, 10));
        roundRange(chart, lo, hi, true, 8);
        XYSeries deq = chart.addSeries("dequantized", steps(lo, width, countB), steps(0, 0, countB));
        style(deq, 2).setMarker(SeriesMarkers.NONE);
        XYSeries orig = chart.addSeries("original", steps(lo, width, countA), steps(0, 0, countA));
        style(orig, 0).setMarker(SeriesMarkers.NONE);
        orig.setLineWidth(2.5f);
        roundTicks(chart);
        return chart;
    }

    /**
     * A histogram as a step line, two points a bin: with {@code width > 0} the x values (each bin's left and right
     * edge), otherwise the y values (its count twice, {@link #EMPTY_BIN} for none).
     */
    private static double[] steps(double lo, double width, double[] counts) {
        double[] out = new double[2 * counts.length];
        for (int i = 0; i < counts.length; i++) {
            if (width > 0) {
                out[2 * i] = lo + i * width;
                out[2 * i + 1] = lo + (i + 1) * width;
            } else {
                out[2 * i] = counts[i] == 0 ? EMPTY_BIN : counts[i];
                out[2 * i + 1] = out[2 * i];
            }
        }
        return out;
    }

    private static int bin(float v, double lo, double width, int bins) {
        int i = (int) Math.floor((v - lo) / width);
        return Math.min(Math.max(i, 0), bins - 1);
    }

    /** Any XChart chart as a PNG, written atomically (the report's and {@code quant eval}'s plots). */
    static void writePng(Chart<?, ?> chart, Path path) throws IOException {
        writePng(BitmapEncoder.getBufferedImage(chart), path);
    }

    private static void writePng(BufferedImage image, Path path) throws IOException {
        AtomicFiles.write(path, o -> {
            if (!ImageIO.write(image, "png", o)) {
                throw new IOException("no PNG writer in this JVM");
            }
        });
    }
}
