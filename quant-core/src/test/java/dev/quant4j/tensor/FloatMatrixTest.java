package dev.quant4j.tensor;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class FloatMatrixTest {

    /** A view at an offset into a larger array: the transpose reads the view, not the array from 0. */
    @Test
    void transposeOfAViewAtAnOffset() {
        float[] data = {9, 9, 1, 2, 3, 4, 5, 6, 9};
        FloatMatrix m = FloatMatrix.of("m", 2, 3, data, 2); // [[1, 2, 3], [4, 5, 6]]
        FloatMatrix t = m.transpose();
        assertThat(t.name()).isEqualTo("m");
        assertThat(t.rows()).isEqualTo(3);
        assertThat(t.cols()).isEqualTo(2);
        assertThat(t.toArray()).containsExactly(1, 4, 2, 5, 3, 6);
        assertThat(t.transpose().toArray()).containsExactly(m.toArray());
    }
}
