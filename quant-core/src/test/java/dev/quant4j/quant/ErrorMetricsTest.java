package dev.quant4j.quant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import org.junit.jupiter.api.Test;

class ErrorMetricsTest {

    @Test
    void valuesFromTheFormulas() {
        // x = [3, 4], x^ = [3, 5]: error [0, -1]
        FloatMatrix x = FloatMatrix.of(1, 2, new float[] {3, 4});
        FloatMatrix y = FloatMatrix.of(1, 2, new float[] {3, 5});
        ErrorMetrics m = ErrorMetrics.compare(x, y);
        assertThat(m.count()).isEqualTo(2);
        assertThat(m.mse()).isEqualTo(0.5);
        assertThat(m.mae()).isEqualTo(0.5);
        assertThat(m.maxAbs()).isEqualTo(1.0);
        // SQNR = 10 log10(25 / 1)
        assertThat(m.sqnrDb()).isCloseTo(10 * Math.log10(25), within(1e-12));
        // cosine = (9 + 20) / (5 * sqrt(34))
        assertThat(m.cosine()).isCloseTo(29 / (5 * Math.sqrt(34)), within(1e-7));
        assertThat(m.rmse()).isEqualTo(Math.sqrt(0.5));
    }

    @Test
    void degenerateCasesAreDefined() {
        FloatMatrix zero = FloatMatrix.of(1, 3, new float[3]);
        FloatMatrix one = FloatMatrix.of(1, 3, new float[] {1, 1, 1});
        ErrorMetrics same = ErrorMetrics.compare(one, one);
        assertThat(same.sqnrDb()).isEqualTo(Double.POSITIVE_INFINITY);
        assertThat(same.cosine()).isCloseTo(1.0, within(1e-7));
        assertThat(ErrorMetrics.compare(zero, zero).cosine()).isEqualTo(1.0);
        assertThat(ErrorMetrics.compare(zero, one).cosine()).isEqualTo(0.0);
        assertThat(ErrorMetrics.compare(zero, one).sqnrDb()).isEqualTo(Double.NEGATIVE_INFINITY);
    }

    @Test
    void outputErrorAgreesWithADirectComputation() {
        FloatMatrix w = Gaussian.matrix("w", 1, 7, 33, 1.0);
        FloatMatrix q = Gaussian.matrix("q", 2, 7, 33, 1.0);
        FloatMatrix x = Gaussian.matrix("x", 3, 5, 33, 1.0);
        double expected = 0;
        for (int t = 0; t < 5; t++) {
            for (int o = 0; o < 7; o++) {
                double e = 0;
                for (int i = 0; i < 33; i++) {
                    e += ((double) w.get(o, i) - q.get(o, i)) * x.get(t, i);
                }
                expected += e * e;
            }
        }
        assertThat(ErrorMetrics.outputError(w, q, x)).isCloseTo(expected, within(1e-4 * expected));
        assertThat(ErrorMetrics.outputError(w, w, x)).isZero();
    }

    @Test
    void shapeMismatchesNameBothShapes() {
        FloatMatrix a = FloatMatrix.of("a", 2, 3, new float[6], 0);
        FloatMatrix b = FloatMatrix.of("b", 3, 2, new float[6], 0);
        assertThatThrownBy(() -> ErrorMetrics.compare(a, b)).hasMessage("shapes differ: 'a' [2, 3] vs 'b' [3, 2]");
        assertThatThrownBy(() -> ErrorMetrics.outputError(a, a, b))
                .hasMessageContaining("activations 'b' have 2 columns, weight 'a' [2, 3] needs 3");
    }
}
