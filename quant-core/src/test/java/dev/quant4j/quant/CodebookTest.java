package dev.quant4j.quant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.quant4j.scheme.Codebook;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class CodebookTest {

    @Test
    void nf4IsSixteenAscendingValuesFromMinusOneToOneWithAnExactZero() {
        float[] v = Codebook.NF4.table();
        assertThat(v).hasSize(16);
        for (int i = 1; i < 16; i++) {
            assertThat(v[i]).isGreaterThan(v[i - 1]);
        }
        assertThat(v[0]).isEqualTo(-1f);
        assertThat(v[7]).isEqualTo(0f);
        assertThat(v[15]).isEqualTo(1f);
        // asymmetric: 8 positive values, 7 negative
        assertThat(v[8]).isNotEqualTo(-v[6]);
    }

    @Test
    void fp4IsSignAndMagnitudeOverTwelve() {
        float[] magnitudes = {0, 0.0625f, 8, 12, 4, 6, 2, 3};
        for (int code = 0; code < 8; code++) {
            assertThat(Codebook.FP4.value(code)).isCloseTo(magnitudes[code] / 12, within(1e-7f));
            assertThat(Codebook.FP4.value(code | 0b1000)).isEqualTo(-Codebook.FP4.value(code));
        }
    }

    @ParameterizedTest
    @EnumSource(Codebook.class)
    void thresholdsAreTheMidpointsAndTiesGoToTheLowerCode(Codebook book) {
        float[] t = book.thresholds();
        if (book == Codebook.NF4) {
            for (int i = 0; i < t.length; i++) {
                double mid = ((double) book.value(i) + book.value(i + 1)) / 2;
                assertThat((double) t[i]).isCloseTo(mid, within(1e-7));
                assertThat(book.encode(t[i])).as("on midpoint %d", i).isEqualTo(i);
                assertThat(book.encode(Math.nextUp(t[i])))
                        .as("above midpoint %d", i)
                        .isEqualTo(i + 1);
            }
        } else {
            // FP4 pivots between the magnitudes 0, 1/192, 1/6, 1/4, 1/3, 1/2, 2/3, 1 (ascending)
            float[] ascending = {0, 0.0625f / 12, 2f / 12, 3f / 12, 4f / 12, 6f / 12, 8f / 12, 1};
            for (int i = 0; i < t.length; i++) {
                assertThat((double) t[i]).isCloseTo((ascending[i] + ascending[i + 1]) / 2.0, within(1e-6));
                float below = Codebook.FP4.value(book.encode(t[i]));
                float above = Codebook.FP4.value(book.encode(Math.nextUp(t[i])));
                assertThat(below).isCloseTo(ascending[i], within(1e-7f));
                assertThat(above).isCloseTo(ascending[i + 1], within(1e-7f));
                // negative side: same magnitude, sign bit set
                assertThat(book.encode(-t[i])).isEqualTo(book.encode(t[i]) | 0b1000);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(Codebook.class)
    void encodeIsTheNearestValue(Codebook book) {
        SplittableRandom r = new SplittableRandom(42);
        for (int n = 0; n < 100_000; n++) {
            float x = (float) (r.nextDouble() * 2 - 1);
            float got = book.value(book.encode(x));
            double best = Double.MAX_VALUE;
            for (float v : book.table()) {
                best = Math.min(best, Math.abs((double) x - v));
            }
            // the float midpoints may differ from the exact ones by rounding only
            assertThat(Math.abs((double) x - got)).as("x=%s", x).isLessThanOrEqualTo(best + 1e-6);
        }
        for (int code = 0; code < 16; code++) {
            float v = book.value(code);
            int back = book.encode(v);
            if (v == 0f) {
                // FP4's -0 (code 8) encodes as +0 (code 0): x < 0 is false for -0.0, as in dQuantizeFP4
                assertThat(book.value(back)).isCloseTo(0f, within(0f));
            } else {
                assertThat(back).as("code %d", code).isEqualTo(code);
            }
        }
    }

    @Test
    void nanEncodesToCodeZeroAsTheReferenceTreesDo() {
        assertThat(Codebook.NF4.encode(Float.NaN)).isZero();
        assertThat(Codebook.FP4.encode(Float.NaN)).isZero();
        assertThat(Codebook.FP4.encode(-0.0f)).isZero();
        assertThat(Codebook.FP4.encode(-1e-9f)).isEqualTo(0b1000);
    }

    /**
     * QLoRA's construction (bitsandbytes {@code create_normal_map(offset=0.9677083, use_extra_value=True)}): 8 positive
     * quantiles of N(0, 1) at probabilities {@code linspace(offset, 0.5, 9)[:-1]}, 7 negative ones at {@code
     * linspace(offset, 0.5, 8)[:-1]}, and 0; sorted and divided by the largest. The probabilities are float32, as
     * torch.linspace makes them; the quantiles are computed in double.
     */
    @Test
    void nf4RegeneratesFromNormalQuantiles() {
        float offset = 0.9677083f;
        List<Double> v = new ArrayList<>();
        float[] pos = DynamicMap.linspace(offset, 0.5f, 9);
        for (int i = 0; i < 8; i++) {
            v.add((double) (float) inverseNormalCdf(pos[i]));
        }
        v.add(0.0);
        float[] neg = DynamicMap.linspace(offset, 0.5f, 8);
        for (int i = 0; i < 7; i++) {
            v.add((double) (float) -inverseNormalCdf(neg[i]));
        }
        v.sort(Double::compare);
        float max = (float) (double) v.get(15);
        float[] table = Codebook.NF4.table();
        for (int i = 0; i < 16; i++) {
            float regenerated = (float) (double) v.get(i) / max;
            assertThat(regenerated)
                    .as("NF4[%d]", i)
                    .isCloseTo(table[i], within(2 * Math.ulp(Math.max(Math.abs(table[i]), 1e-3f))));
        }
    }

    /** Phi^-1(p) by Newton's method on the series Phi(x) = 1/2 + phi(x) sum x^(2n+1) / (2n+1)!!, exact to 1e-15. */
    static double inverseNormalCdf(double p) {
        double x = 0;
        for (int iter = 0; iter < 100; iter++) {
            double dx = (normalCdf(x) - p) / normalPdf(x);
            x -= dx;
            if (Math.abs(dx) < 1e-15) {
                break;
            }
        }
        return x;
    }

    static double normalPdf(double x) {
        return Math.exp(-x * x / 2) / Math.sqrt(2 * Math.PI);
    }

    static double normalCdf(double x) {
        double term = x;
        double sum = x;
        for (int n = 1; n < 200 && Math.abs(term) > 1e-18 * Math.abs(sum); n++) {
            term *= x * x / (2 * n + 1);
            sum += term;
        }
        return 0.5 + normalPdf(x) * sum;
    }

    @Test
    void inverseNormalCdfIsRight() {
        assertThat(inverseNormalCdf(0.5)).isCloseTo(0.0, within(1e-15));
        assertThat(inverseNormalCdf(0.975)).isCloseTo(1.959963984540054, within(1e-12));
        assertThat(inverseNormalCdf(0.8413447460685429)).isCloseTo(1.0, within(1e-12));
    }
}
