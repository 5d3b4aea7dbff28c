package dev.quant4j.cli;

import dev.quant4j.codebook.BlockwiseQuantizer;
import dev.quant4j.io.AtomicFiles;
import dev.quant4j.kernel.Kernels;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.quant.CodebookScheme;
import dev.quant4j.quant.CodebookTensor;
import dev.quant4j.quant.LinearScheme;
import dev.quant4j.quant.QuantScheme;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.study.BitWidthStudy;
import dev.quant4j.tensor.FloatMatrix;
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
import org.knowm.xchart.style.markers.SeriesMarkers;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(
        name = "report",
        mixinStandardHelpOptions = true,
        description = {
            "Error per bit width (2, 3, 4, 6, 8) of round-to-nearest quantization, asym/sym/signed, per channel and"
                    + " per group of 128, and of NF4 and FP4 (block 64): a Markdown table on stdout and in"
                    + " DIR/report.md, and two PNG plots.",
            "Without --in: built-in weights, 1024 x 1024 samples of N(0, 0.15^2) (SplitMix64 seed 42, Box-Muller)."
        })
final class ReportCommand implements Callable<Integer> {

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--in", description = "weights: W.npy or model.safetensors (default: built-in data)")
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
                + "\n![error vs bit width](error-vs-bits.png)\n\n![histogram](histogram.png)\n";
        FloatMatrix timed = tensors.get(0);
        List<Throughput> speeds = throughput(timed);
        String report = md + "\n## Throughput per bit width\n\nOne thread, on '" + timed.name() + "' (" + timed.size()
                + " weights), GiB/s of float32, the best of " + TIMING_REPS + " wall-clock runs after a warm-up:"
                + " indicative only; the JMH figures (`./bench`) are in docs/benchmarks.md.\n\n"
                + throughputTable(speeds) + "\n![throughput](throughput.png)\n";
        PrintWriter pw = spec.commandLine().getOut();
        pw.print(table);
        Files.createDirectories(outDir);
        AtomicFiles.write(outDir.resolve("report.md"), o -> o.write(report.getBytes(StandardCharsets.UTF_8)));
        writePng(errorChart(rows), outDir.resolve("error-vs-bits.png"));
        FloatMatrix first = tensors.get(0);
        LinearScheme histScheme = first.cols() % 128 == 0 ? LinearScheme.asym(4, 128) : LinearScheme.asym(4, -1);
        FloatMatrix deq = new RtnQuantizer(histScheme).quantize(first).dequantize();
        writePng(histogram(first, deq, histScheme), outDir.resolve("histogram.png"));
        writePng(throughputChart(speeds), outDir.resolve("throughput.png"));
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

    /** Quantize and dequantize speed of one scheme, GiB/s of float32. */
    record Throughput(String scheme, int bits, double quantize, double dequantize) {}

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
                out.add(new Throughput(LinearScheme.asym(bits, g).toString(), bits, gib / qs, gib / ds));
            }
            for (CodebookScheme cs : BitWidthStudy.codebookSchemes()) {
                BlockwiseQuantizer q = new BlockwiseQuantizer(cs);
                CodebookTensor t = q.quantize(w);
                double qs = bestSeconds(() -> q.quantize(w));
                double ds = bestSeconds(() -> t.dequantizeInto(buffer, 0));
                out.add(new Throughput(cs.toString(), 4, gib / qs, gib / ds));
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

    static XYChart throughputChart(List<Throughput> speeds) {
        XYChart chart = new XYChartBuilder()
                .width(900)
                .height(560)
                .title("Throughput per bit width (one thread, " + Kernels.get().name() + ")")
                .xAxisTitle("bits per code")
                .yAxisTitle("GiB/s of float32")
                .build();
        chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
        List<Throughput> linear =
                speeds.stream().filter(t -> t.scheme().startsWith("linear")).toList();
        for (boolean quantize : new boolean[] {true, false}) {
            double[] x = linear.stream().mapToDouble(Throughput::bits).toArray();
            double[] y = linear.stream()
                    .mapToDouble(t -> quantize ? t.quantize() : t.dequantize())
                    .toArray();
            chart.addSeries("RTN " + (quantize ? "quantize" : "dequantize"), x, y)
                    .setMarker(SeriesMarkers.CIRCLE);
        }
        for (Throughput t : speeds) {
            if (!t.scheme().startsWith("linear")) {
                chart.addSeries(t.scheme() + " quantize", new double[] {4}, new double[] {t.quantize()})
                        .setMarker(SeriesMarkers.DIAMOND);
                chart.addSeries(t.scheme() + " dequantize", new double[] {4}, new double[] {t.dequantize()})
                        .setMarker(SeriesMarkers.SQUARE);
            }
        }
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

    static XYChart errorChart(List<BitWidthStudy.Row> rows) {
        XYChart chart = new XYChartBuilder()
                .width(900)
                .height(560)
                .title("Quantization error vs bit width (round to nearest)")
                .xAxisTitle("bits per code")
                .yAxisTitle("SQNR (dB), higher is better")
                .build();
        chart.getStyler().setLegendPosition(Styler.LegendPosition.InsideNW);
        Map<String, List<BitWidthStudy.Row>> series = new LinkedHashMap<>();
        for (BitWidthStudy.Row r : rows) {
            series.computeIfAbsent(r.form() + " " + r.granularity(), k -> new ArrayList<>())
                    .add(r);
        }
        for (Map.Entry<String, List<BitWidthStudy.Row>> e : series.entrySet()) {
            double[] x =
                    e.getValue().stream().mapToDouble(r -> r.scheme().bits()).toArray();
            double[] y =
                    e.getValue().stream().mapToDouble(r -> r.metrics().sqnrDb()).toArray();
            XYSeries s = chart.addSeries(e.getKey(), x, y);
            s.setMarker(SeriesMarkers.CIRCLE);
        }
        return chart;
    }

    static XYChart histogram(FloatMatrix before, FloatMatrix after, LinearScheme scheme) {
        float[] a = before.toArray();
        float[] b = after.toArray();
        double lo = Double.MAX_VALUE;
        double hi = -Double.MAX_VALUE;
        for (float v : a) {
            lo = Math.min(lo, v);
            hi = Math.max(hi, v);
        }
        int bins = 200;
        double width = (hi - lo) / bins;
        if (width == 0) {
            width = 1;
        }
        double[] centers = new double[bins];
        double[] countA = new double[bins];
        double[] countB = new double[bins];
        for (int i = 0; i < bins; i++) {
            centers[i] = lo + (i + 0.5) * width;
        }
        for (float v : a) {
            countA[bin(v, lo, width, bins)]++;
        }
        for (float v : b) {
            countB[bin(v, lo, width, bins)]++;
        }
        XYChart chart = new XYChartBuilder()
                .width(900)
                .height(560)
                .title("Weight histogram before and after " + scheme)
                .xAxisTitle("weight value")
                .yAxisTitle("count per bin")
                .build();
        chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
        chart.getStyler().setMarkerSize(0);
        chart.addSeries("original " + before.name(), centers, countA).setMarker(SeriesMarkers.NONE);
        chart.addSeries("dequantized", centers, countB).setMarker(SeriesMarkers.NONE);
        return chart;
    }

    private static int bin(float v, double lo, double width, int bins) {
        int i = (int) Math.floor((v - lo) / width);
        return Math.min(Math.max(i, 0), bins - 1);
    }

    /** Any XChart chart as a PNG, written atomically (the report's and {@code quant eval}'s plots). */
    static void writePng(Chart<?, ?> chart, Path path) throws IOException {
        BufferedImage image = BitmapEncoder.getBufferedImage(chart);
        AtomicFiles.write(path, o -> {
            if (!ImageIO.write(image, "png", o)) {
                throw new IOException("no PNG writer in this JVM");
            }
        });
    }
}
