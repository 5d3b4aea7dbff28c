package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.io.Npy;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.QuantScheme;
import dev.quant4j.study.BitWidthStudy;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import java.awt.image.BufferedImage;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.internal.chartpart.AxesChart;
import org.knowm.xchart.internal.chartpart.AxisTickCalculator;

/** {@code quant report}: the files it writes, what its plots draw, and that its help names every file. */
class ReportCommandTest {

    @TempDir
    Path dir;

    static final List<String> WRITTEN = List.of("error-vs-bits.png", "histogram.png", "report.md", "throughput.png");

    private static QuantCliTest.Result run(String... args) {
        return QuantCliTest.run(args);
    }

    private static List<String> list(Path folder) throws Exception {
        try (Stream<Path> s = Files.list(folder)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    private static final FloatMatrix W = Gaussian.matrix("w", 1, 16, 256, 0.15);

    /** The study the command runs on {@link #W}: every note scheme (256 columns take g128) and NF4/FP4. */
    private static List<BitWidthStudy.Row> study() {
        List<QuantScheme> schemes = new ArrayList<>(BitWidthStudy.noteSchemes());
        schemes.addAll(BitWidthStudy.codebookSchemes());
        return BitWidthStudy.run(List.of(W), schemes);
    }

    private static List<XYSeries> drawn(XYChart chart) {
        return chart.getSeriesCollection().stream()
                .filter(s -> !s.getName().equals(ReportCommand.TICK_GUARD))
                .toList();
    }

    @Test
    void writesTheFourFilesItsHelpNames() throws Exception {
        Path in = dir.resolve("w.npy");
        Npy.write(in, W);
        Path out = dir.resolve("rep");
        QuantCliTest.Result r = run("report", "--in", in.toString(), "--out", out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err()).isEmpty();
        assertThat(list(out)).isEqualTo(WRITTEN);
        assertThat(list(dir)).containsExactly("rep", "w.npy");
        String wrote =
                r.out().lines().filter(l -> l.startsWith("wrote ")).findFirst().orElseThrow();
        for (String f : WRITTEN) {
            assertThat(wrote).contains(out.resolve(f).toString());
        }
        for (String png : List.of("error-vs-bits.png", "histogram.png", "throughput.png")) {
            byte[] b = Files.readAllBytes(out.resolve(png));
            assertThat(Arrays.copyOf(b, 4)).containsExactly(0x89, 'P', 'N', 'G');
            BufferedImage image = ImageIO.read(out.resolve(png).toFile());
            assertThat(image.getWidth()).as(png).isEqualTo(1000);
            assertThat(image.getHeight()).as(png).isEqualTo(600);
            assertThat(Files.readString(out.resolve("report.md"))).contains("](" + png + ")");
        }
        assertThat(r.out()).contains("| asym | g128 | 4 | 4.313 |").contains("| nf4 | block 64 | 4 | 4.500 |");

        QuantCliTest.Result help = run("report", "--help");
        assertThat(help.code()).isZero();
        assertThat(help.out()).contains("Writes four").doesNotContain("two PNG");
        for (String f : WRITTEN) {
            assertThat(help.out()).contains(f);
        }
        assertThat(help.out()).contains("model.onnx");

        // --out naming a file: exit 2, one line, nothing written
        Path file = dir.resolve("file.txt");
        Files.writeString(file, "x");
        QuantCliTest.Result bad = run("report", "--in", in.toString(), "--out", file.toString());
        assertThat(bad.code()).isEqualTo(2);
        assertThat(bad.err()).isEqualTo("quant: --out " + file + " exists and is not a folder\n");
        assertThat(list(dir)).containsExactly("file.txt", "rep", "w.npy");
    }

    /** x is the stored bits per weight (not bits per code), increasing along each line; the title says what is drawn. */
    @Test
    void errorChartPlotsSqnrAgainstBitsPerWeight() throws Exception {
        List<BitWidthStudy.Row> rows = study();
        XYChart chart = ReportCommand.errorChart(rows);
        assertThat(chart.getTitle())
                .contains("bits per weight")
                .contains("NF4/FP4")
                .contains("round-to-nearest");
        assertThat(chart.getXAxisTitle()).startsWith("bits per weight");
        List<XYSeries> series = drawn(chart);
        assertThat(series)
                .extracting(XYSeries::getName)
                .containsExactly(
                        "RTN asym per-channel",
                        "RTN asym g128",
                        "RTN sym per-channel",
                        "RTN sym g128",
                        "RTN signed per-channel",
                        "RTN signed g128",
                        "NF4 block 64",
                        "FP4 block 64");
        for (XYSeries s : series) {
            double[] x = s.getXData();
            for (int i = 1; i < x.length; i++) {
                assertThat(x[i]).as(s.getName()).isGreaterThan(x[i - 1]);
            }
        }
        // 256 columns: per channel a float32 scale and a byte zero-point add 40/256 bits, per group of 128 40/128
        assertThat(chart.getSeries("RTN asym per-channel").getXData())
                .containsExactly(2.15625, 3.15625, 4.15625, 6.15625, 8.15625);
        assertThat(chart.getSeries("RTN sym g128").getXData()).containsExactly(2.3125, 3.3125, 4.3125, 6.3125, 8.3125);
        assertThat(chart.getSeries("NF4 block 64").getXData()).containsExactly(4.5);
        assertThat(chart.getSeries("FP4 block 64").getXData()).containsExactly(4.5);
        for (XYSeries s : series) { // the y values are the rows' SQNR, in the same order
            for (int i = 0; i < s.getXData().length; i++) {
                double x = s.getXData()[i];
                double y = s.getYData()[i];
                assertThat(rows).anySatisfy(r -> {
                    assertThat(r.bitsPerWeight()).isEqualTo(x);
                    assertThat(r.metrics().sqnrDb()).isEqualTo(y);
                });
            }
        }
        assertDistinctColoursAndMarkers(series);
        assertRoundTicks(chart);
    }

    /**
     * A constant tensor (most schemes reconstruct it exactly: SQNR infinite) and a 2 x 3 one (no group of 128) still
     * give the four files; what is exact is left out of the plot and counted in its title, and a series keeps its
     * colour and marker whichever others are drawn.
     */
    @Test
    void constantAndTinyTensorsStillGiveEveryPlot() throws Exception {
        Path constant = dir.resolve("const.npy");
        float[] c = new float[4 * 128];
        Arrays.fill(c, 0.25f);
        Npy.write(constant, new long[] {4, 128}, c);
        Path tiny = dir.resolve("tiny.npy");
        Npy.write(tiny, new long[] {2, 3}, new float[] {0.1f, -0.2f, 0.3f, 0.05f, 0f, -0.4f});
        for (Path in : List.of(constant, tiny)) {
            Path out = dir.resolve("rep-" + in.getFileName());
            QuantCliTest.Result r = run("report", "--in", in.toString(), "--out", out.toString());
            assertThat(r.code()).as(r.err()).isZero();
            assertThat(list(out)).isEqualTo(WRITTEN);
        }
        List<QuantScheme> schemes = new ArrayList<>(BitWidthStudy.noteSchemes());
        schemes.removeIf(s -> ((LinearScheme) s).groupSize() > 0);
        schemes.addAll(BitWidthStudy.codebookSchemes());
        List<BitWidthStudy.Row> rows = BitWidthStudy.run(List.of(Npy.readMatrix(constant)), schemes);
        long exact = rows.stream()
                .filter(r -> Double.isInfinite(r.metrics().sqnrDb()))
                .count();
        assertThat(exact).isPositive();
        XYChart chart = ReportCommand.errorChart(rows);
        assertThat(chart.getTitle()).endsWith("(" + exact + " exact: not drawn)");
        for (XYSeries s : drawn(chart)) {
            assertThat(Arrays.stream(s.getYData()).allMatch(Double::isFinite))
                    .as(s.getName())
                    .isTrue();
        }
        XYChart full = ReportCommand.errorChart(study());
        XYChart perChannel = ReportCommand.errorChart(BitWidthStudy.run(List.of(Npy.readMatrix(tiny)), schemes));
        for (String name : List.of("RTN signed per-channel", "NF4 block 64", "FP4 block 64")) {
            assertThat(perChannel.getSeries(name).getLineColor())
                    .isEqualTo(full.getSeries(name).getLineColor());
            assertThat(perChannel.getSeries(name).getMarker())
                    .isEqualTo(full.getSeries(name).getMarker());
        }
    }

    @Test
    void histogramShowsTheOriginalOnALogScale() throws Exception {
        LinearScheme scheme = LinearScheme.asym(4, 128);
        FloatMatrix big = Gaussian.matrix("big", 3, 256, 1024, 0.15);
        XYChart chart = ReportCommand.histogram(
                big, new RtnQuantizer(scheme).quantize(big).dequantize(), scheme);
        assertThat(chart.getTitle()).contains("'big'").contains("RTN 4-bit asym g128");
        assertThat(chart.getStyler().isYAxisLogarithmic()).isTrue();
        List<XYSeries> series = drawn(chart);
        assertThat(series).extracting(XYSeries::getName).containsExactly("dequantized", "original");
        XYSeries original = chart.getSeries("original");
        XYSeries dequantized = chart.getSeries("dequantized");
        // every weight counted once, in step lines of two points a bin
        assertThat(sumOfBins(original)).isEqualTo(big.size());
        assertThat(sumOfBins(dequantized)).isEqualTo(big.size());
        double min = chart.getStyler().getYAxisMin();
        double max = chart.getStyler().getYAxisMax();
        double peak = Arrays.stream(original.getYData()).max().orElseThrow();
        double deqPeak = Arrays.stream(dequantized.getYData()).max().orElseThrow();
        assertThat(deqPeak).as("the dequantized spike is taller").isGreaterThan(3 * peak);
        assertThat(deqPeak).isLessThanOrEqualTo(max);
        // the original's peak stands in the upper part of the plot (on a linear axis it was at 1/7 of the height)
        assertThat(Math.log(peak / min) / Math.log(max / min)).isGreaterThan(0.6);
        assertThat(ReportCommand.EMPTY_BIN).isLessThan(min); // empty bins fall below the axis
        assertThat(original.getXData()).isSorted();
        assertDistinctColoursAndMarkers(series);
        assertRoundTicks(chart);
    }

    @Test
    void throughputChartTellsEverySeriesApart() throws Exception {
        List<ReportCommand.Throughput> speeds = List.of(
                new ReportCommand.Throughput("linear 2-bit asym g128", 2, 2.3125, 4.5, 48.2),
                new ReportCommand.Throughput("linear 3-bit asym g128", 3, 3.3125, 12.7, 40.5),
                new ReportCommand.Throughput("linear 4-bit asym g128", 4, 4.3125, 6.4, 42.5),
                new ReportCommand.Throughput("linear 8-bit asym g128", 8, 8.3125, 17.0, 38.7),
                new ReportCommand.Throughput("nf4 block 64", 4, 4.5, 9.3, 36.6),
                new ReportCommand.Throughput("fp4 block 64", 4, 4.5, 9.7, 34.7));
        XYChart chart = ReportCommand.throughputChart(speeds);
        assertThat(chart.getXAxisTitle()).startsWith("bits per weight");
        List<XYSeries> series = drawn(chart);
        assertThat(series)
                .extracting(XYSeries::getName)
                .containsExactly(
                        "RTN asym g128 quantize",
                        "RTN asym g128 dequantize",
                        "nf4 block 64 quantize",
                        "nf4 block 64 dequantize",
                        "fp4 block 64 quantize",
                        "fp4 block 64 dequantize");
        assertThat(chart.getSeries("RTN asym g128 quantize").getXData())
                .containsExactly(2.3125, 3.3125, 4.3125, 8.3125);
        assertThat(chart.getSeries("RTN asym g128 dequantize").getYData()).containsExactly(48.2, 40.5, 42.5, 38.7);
        assertThat(chart.getSeries("fp4 block 64 quantize").getXData()).containsExactly(4.5);
        assertDistinctColoursAndMarkers(series);
        assertRoundTicks(chart);
    }

    private static double sumOfBins(XYSeries s) {
        double sum = 0;
        double[] y = s.getYData();
        for (int i = 0; i < y.length; i += 2) {
            sum += y[i] == ReportCommand.EMPTY_BIN ? 0 : y[i];
        }
        return sum;
    }

    private static void assertDistinctColoursAndMarkers(List<XYSeries> series) {
        assertThat(new HashSet<>(series.stream().map(XYSeries::getLineColor).toList()))
                .as("colours")
                .hasSize(series.size());
        for (XYSeries s : series) {
            assertThat(s.getMarkerColor()).isEqualTo(s.getLineColor());
        }
        List<?> markers = series.stream()
                .map(XYSeries::getMarker)
                .filter(m -> m != org.knowm.xchart.style.markers.SeriesMarkers.NONE)
                .toList();
        assertThat(new HashSet<>(markers)).as("markers").hasSameSizeAs(markers);
    }

    /**
     * The tick labels XChart draws, after a render: on a linear axis, multiples of a step of 1, 2, 2.5 or 5 times a
     * power of ten; on a log axis, powers of ten. XChart keeps them internal, so they are read by reflection.
     */
    private static void assertRoundTicks(XYChart chart) throws Exception {
        BitmapEncoder.getBufferedImage(chart);
        for (boolean x : new boolean[] {true, false}) {
            List<String> labels = tickLabels(chart, x);
            String axis = x ? "x ticks " + labels : "y ticks " + labels;
            assertThat(labels).as(axis).hasSizeGreaterThanOrEqualTo(3);
            List<BigDecimal> v =
                    labels.stream().map(l -> new BigDecimal(l.replace(",", ""))).toList();
            if (!x && chart.getStyler().isYAxisLogarithmic()) {
                for (BigDecimal d : v) {
                    assertThat(d.stripTrailingZeros().unscaledValue()).as(axis).isEqualTo(java.math.BigInteger.ONE);
                }
                continue;
            }
            BigDecimal step = v.get(1).subtract(v.get(0));
            BigDecimal mantissa =
                    step.movePointLeft(step.precision() - step.scale() - 1).stripTrailingZeros();
            assertThat(mantissa.doubleValue()).as(axis).isIn(1.0, 2.0, 2.5, 5.0);
            for (int i = 1; i < v.size(); i++) {
                assertThat(v.get(i).subtract(v.get(i - 1))).as(axis).isEqualByComparingTo(step);
                assertThat(v.get(i).remainder(step).signum()).as(axis).isZero();
            }
        }
    }

    private static List<String> tickLabels(XYChart chart, boolean x) throws Exception {
        Field pairField = AxesChart.class.getDeclaredField("axisPair");
        pairField.setAccessible(true);
        Object pair = pairField.get(chart);
        Method get = pair.getClass().getDeclaredMethod(x ? "getXAxis" : "getYAxis");
        get.setAccessible(true);
        Object axis = get.invoke(pair);
        Method calc = findMethod(axis.getClass(), "getAxisTickCalculator");
        calc.setAccessible(true);
        AxisTickCalculator c = (AxisTickCalculator) calc.invoke(axis);
        return c.getTickLabels().stream().filter(Objects::nonNull).toList();
    }

    private static Method findMethod(Class<?> c, String name) throws NoSuchMethodException {
        for (Class<?> k = c; k != null; k = k.getSuperclass()) {
            for (Method m : k.getDeclaredMethods()) {
                if (m.getName().equals(name) && m.getParameterCount() == 0) {
                    return m;
                }
            }
        }
        throw new NoSuchMethodException(name);
    }
}
