package dev.quant4j.awq;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.Symmetry;
import dev.quant4j.tensor.FloatMatrix;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ForkJoinPool;
import org.junit.jupiter.api.Test;

/**
 * The block-level scale search ({@code _search_module_scale} with any module to inspect) and the folding helpers,
 * against independent computations: the per-layer search (checked against llm-awq's) when the module is the layer
 * itself, direct loops for a nonlinear module, and the product a folded pair of layers computes.
 */
class AutoScaleTest {

    static final LinearScheme G32 = new LinearScheme(4, Symmetry.MINMAX, 32);

    /** {@code x w^T}, in double, as a float matrix. */
    static FloatMatrix matmul(FloatMatrix x, FloatMatrix w) {
        float[] y = new float[x.rows() * w.rows()];
        for (int t = 0; t < x.rows(); t++) {
            for (int o = 0; o < w.rows(); o++) {
                double s = 0;
                for (int c = 0; c < x.cols(); c++) {
                    s += (double) x.get(t, c) * w.get(o, c);
                }
                y[t * w.rows() + o] = (float) s;
            }
        }
        return FloatMatrix.of("y", x.rows(), w.rows(), y, 0);
    }

    static List<FloatMatrix> chunks(FloatMatrix x, int n) {
        List<FloatMatrix> out = new ArrayList<>();
        int per = x.rows() / n;
        for (int i = 0; i < n; i++) {
            float[] a = new float[per * x.cols()];
            System.arraycopy(x.array(), i * per * x.cols(), a, 0, a.length);
            out.add(FloatMatrix.of("x" + i, per, x.cols(), a, 0));
        }
        return out;
    }

    @Test
    void getActScaleIsTheMeanAbsoluteValuePerChannel() {
        List<FloatMatrix> x = List.of(
                FloatMatrix.of("a", 1, 2, new float[] {1, -2}, 0), FloatMatrix.of("b", 1, 2, new float[] {3, 4}, 0));
        assertThat(AutoScale.getActScale(x)).containsExactly(2f, 3f);
    }

    @Test
    void withTheLayerItselfAsTheModuleItIsThePerLayerSearch() {
        FloatMatrix w = AwqTest.weights(48, 128, 11);
        FloatMatrix x = AwqTest.activations(600, 128, 12, 8, 20);
        List<FloatMatrix> xs = chunks(x, 3);
        AutoScale.Search s = AutoScale.searchModuleScale(
                ws -> xs.stream().map(c -> matmul(c, ws.get(0))).toList(),
                List.of(w),
                AutoScale.getActScale(xs),
                G32,
                ForkJoinPool.commonPool());
        AwqResult perLayer = new Awq(new AwqConfig(4, 32, 20, 0.5, false)).quantize(w, AwqTest.stats(x));
        assertThat(s.ratio()).isEqualTo(perLayer.alpha()).isPositive();
        float[] expected = perLayer.scales();
        float[] actual = s.scales();
        for (int c = 0; c < expected.length; c++) {
            assertThat(actual[c]).isCloseTo(expected[c], within(1e-6f * expected[c]));
        }
        for (int i = 0; i < 20; i++) {
            double ref = perLayer.lossCurve()[i];
            assertThat(s.history()[i]).as("ratio %d", i).isCloseTo(ref, within(1e-4 * ref));
        }
    }

    /** {@code silu(x A^T) * (x B^T)}: two layers that read one input, as gate and up do. */
    static List<FloatMatrix> swiglu(List<FloatMatrix> xs, FloatMatrix a, FloatMatrix b) {
        List<FloatMatrix> out = new ArrayList<>();
        for (FloatMatrix x : xs) {
            float[] g = matmul(x, a).toArray();
            float[] u = matmul(x, b).toArray();
            for (int i = 0; i < g.length; i++) {
                g[i] = (float) (g[i] / (1 + Math.exp(-g[i]))) * u[i];
            }
            out.add(FloatMatrix.of("out", x.rows(), a.rows(), g, 0));
        }
        return out;
    }

    @Test
    void theSearchPicksTheRatioWithTheLeastLossAtTheModulesOutput() {
        FloatMatrix a = AwqTest.weights(40, 64, 21);
        FloatMatrix b = AwqTest.weights(40, 64, 22);
        List<FloatMatrix> xs = chunks(AwqTest.activations(300, 64, 23, 4, 25), 2);
        float[] xMax = AutoScale.getActScale(xs);
        AutoScale.Search s = AutoScale.searchModuleScale(
                ws -> swiglu(xs, ws.get(0), ws.get(1)), List.of(a, b), xMax, G32, ForkJoinPool.commonPool());

        // every ratio's loss computed here, step by step
        List<FloatMatrix> orgOut = swiglu(xs, a, b);
        double[] losses = new double[20];
        int best = 0;
        for (int i = 0; i < 20; i++) {
            float[] sc = new float[64];
            float max = 0;
            float min = Float.MAX_VALUE;
            for (int c = 0; c < 64; c++) {
                sc[c] = Math.max((float) Math.pow(xMax[c], i / 20.0), 1e-4f);
                max = Math.max(max, sc[c]);
                min = Math.min(min, sc[c]);
            }
            float norm = (float) Math.sqrt(max * min);
            for (int c = 0; c < 64; c++) {
                sc[c] /= norm;
            }
            List<FloatMatrix> out = swiglu(xs, fakeQuant(a, sc), fakeQuant(b, sc));
            double sum = 0;
            long n = 0;
            for (int k = 0; k < out.size(); k++) {
                float[] p = orgOut.get(k).toArray();
                float[] q = out.get(k).toArray();
                for (int j = 0; j < p.length; j++) {
                    sum += ((double) p[j] - q[j]) * ((double) p[j] - q[j]);
                }
                n += p.length;
            }
            losses[i] = sum / n;
            if (losses[i] < losses[best]) {
                best = i;
            }
            assertThat(s.history()[i]).as("ratio %d", i).isCloseTo(losses[i], within(1e-9 * losses[i]));
        }
        assertThat(s.ratio()).isEqualTo(best / 20.0);
        assertThat(best)
                .as("the outlier channels make some ratio beat plain rounding")
                .isPositive();
        assertThat(losses[best]).isLessThan(0.8 * losses[0]);
    }

    /** {@code Q(W * s) / s}, element by element from the round-to-nearest codes. */
    static FloatMatrix fakeQuant(FloatMatrix w, float[] s) {
        FloatMatrix q = new RtnQuantizer(G32).quantize(Awq.scale(w, s)).dequantizeFolded();
        float[] out = q.toArray();
        for (int r = 0; r < w.rows(); r++) {
            for (int c = 0; c < w.cols(); c++) {
                out[r * w.cols() + c] /= s[c];
            }
        }
        return FloatMatrix.of(w.name(), w.rows(), w.cols(), out, 0);
    }

    @Test
    void foldingIntoThePreviousLayerLeavesThePairsOutputUnchanged() {
        FloatMatrix fc1 = AwqTest.weights(24, 16, 31);
        FloatMatrix fc2 = AwqTest.weights(8, 24, 32);
        float[] b1 = AwqTest.weights(1, 24, 33).toArray();
        float[] s = new float[24];
        for (int i = 0; i < 24; i++) {
            s[i] = (float) Math.exp((i % 7 - 3) * 0.8); // 0.09 .. 11
        }
        FloatMatrix x = AwqTest.activations(10, 16, 34, 0, 1);
        FloatMatrix expected = matmul(withBias(matmul(x, fc1), b1), fc2);
        FloatMatrix folded = matmul(
                withBias(matmul(x, AutoScale.scaleFcRows(fc1, s)), AutoScale.divide(b1, s)), AutoScale.scaleFc(fc2, s));
        float[] e = expected.toArray();
        float[] f = folded.toArray();
        for (int i = 0; i < e.length; i++) {
            assertThat(f[i]).isCloseTo(e[i], within(1e-6f));
        }
    }

    static FloatMatrix withBias(FloatMatrix y, float[] b) {
        float[] a = y.toArray();
        for (int t = 0; t < y.rows(); t++) {
            for (int o = 0; o < y.cols(); o++) {
                a[t * y.cols() + o] += b[o];
            }
        }
        return FloatMatrix.of("y", y.rows(), y.cols(), a, 0);
    }
}
