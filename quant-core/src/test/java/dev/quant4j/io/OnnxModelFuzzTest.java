package dev.quant4j.io;

import static dev.quant4j.testing.FuzzContract.require;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.quant4j.testing.FuzzContract;
import java.util.Arrays;

/**
 * ONNX ({@link OnnxModel} over {@link ProtoReader}): any bytes are read or refused; every initializer of an accepted
 * model gives its values (as floats, as a matrix when 2-D, as bytes when safetensors has its type), and {@link
 * OnnxRewriter} with no change gives back the input byte for byte. The rewriter also parses what the reader skips
 * (operator set imports), so it may refuse a model the reader took, with the documented exception.
 */
class OnnxModelFuzzTest {

    @FuzzTest
    void fuzz(byte[] input) {
        FuzzContract.check(input, OnnxModelFuzzTest::read, model -> {
            byte[] same;
            try {
                same = OnnxRewriter.rewrite("fuzz.onnx", input, new OnnxRewriter.Edit());
            } catch (MalformedTensorFileException refused) {
                return;
            }
            require(Arrays.equals(same, input), "the rewriter changed a model it was asked not to change");
        });
    }

    /** The model and everything its accessors give; they may refuse a tensor (an empty matrix) as the reader may. */
    private static OnnxModel read(byte[] bytes) {
        OnnxModel model = OnnxModel.parse("fuzz.onnx", bytes);
        for (OnnxModel.Initializer t : model.initializers().values()) {
            if (t.dataType() == OnnxModel.FLOAT) {
                t.floats();
                if (t.dims().length == 2) {
                    t.matrix();
                }
            }
            if (t.dtype() != null) {
                require(t.bytes().length == t.elements() * t.dtype().bytes(), "bytes of " + t);
            }
        }
        model.matMulWeights();
        return model;
    }
}
