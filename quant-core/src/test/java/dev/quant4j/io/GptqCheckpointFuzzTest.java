package dev.quant4j.io;

import static dev.quant4j.testing.FuzzContract.require;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.tensor.HalfFloats;
import dev.quant4j.testing.FuzzContract;
import dev.quant4j.testing.FuzzFolder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * GPTQ checkpoint folders: any folder of a {@code quantize_config.json}, a {@code config.json} and weight files (one
 * input, {@link FuzzFolder}) is read or refused; what is read is written again by {@link GptqCheckpoint#toFiles} and
 * reads back the same weights (codes, zero-points, scales, g_idx, scheme) and pass-through tensors, with the same bits
 * and group size.
 *
 * <p>Two things the reader takes cannot be written, since the writer writes {@code checkpoint_format "gptq"} (v1) with
 * FP16 scales: a {@code gptq_v2} zero-point of 0 (v1 stores {@code zero - 1}), and an F32 or BF16 scale that FP16
 * rounds to 0 or infinity. Such a checkpoint is read, and the writer must refuse it with that reason; any other scale
 * comes back rounded to FP16.
 */
class GptqCheckpointFuzzTest {

    @FuzzTest
    void fuzz(byte[] input) {
        FuzzContract.check(
                input,
                bytes -> GptqCheckpoint.read(
                        ModelFolder.of(FuzzFolder.unpack(bytes, FuzzFolder.GPTQ_CHECKPOINT), "fuzz")),
                GptqCheckpointFuzzTest::roundTrip);
    }

    private static void roundTrip(GptqCheckpoint.Checkpoint c) throws java.io.IOException {
        Map<String, QuantizedWeight> weights = c.content().weights();
        boolean v2 = "gptq_v2"
                .equals(String.valueOf(c.quantizeConfig().get("checkpoint_format"))
                        .toLowerCase(Locale.ROOT));
        List<QuantizedTensor> expected = new ArrayList<>();
        for (QuantizedWeight w : weights.values()) {
            String why = GptqCheckpoint.unsupported(w);
            if (why == null) {
                expected.add(fp16Scales((QuantizedTensor) w));
            } else {
                require(
                        (v2 && why.contains("has zero-point 0")) || why.contains("outside FP16's range"),
                        "read, but the writer refuses it: " + why);
            }
        }
        if (expected.size() < weights.size()) {
            return;
        }
        Map<String, byte[]> files = GptqCheckpoint.toFiles(
                List.copyOf(weights.values()), c.content().other(), GptqCheckpoint.Options.defaults());
        GptqCheckpoint.Checkpoint again = GptqCheckpoint.read(ModelFolder.of(files, "rewritten"));
        for (String key : List.of("bits", "group_size")) {
            require(
                    again.quantizeConfig().get(key).equals(c.quantizeConfig().get(key)),
                    key + " differs after writing");
        }
        require(again.content().weights().size() == weights.size(), "weight count differs after writing");
        for (QuantizedTensor q : expected) {
            require(q.equals(again.content().weights().get(q.name())), "weight '" + q.name() + "' differs");
        }
        List<QuantizedSafeTensors.PassThrough> other = c.content().other();
        require(again.content().other().size() == other.size(), "pass-through count differs after writing");
        for (QuantizedSafeTensors.PassThrough t : other) {
            QuantizedSafeTensors.PassThrough u = again.content().other().stream()
                    .filter(p -> p.name().equals(t.name()))
                    .findFirst()
                    .orElseThrow(() -> new AssertionError("tensor '" + t.name() + "' lost in writing"));
            require(
                    u.dtype() == t.dtype()
                            && Arrays.equals(u.shape(), t.shape())
                            && Arrays.equals(u.bytes(), t.bytes()),
                    "tensor '" + t.name() + "' differs after writing");
        }
    }

    /** {@code q} with its scales rounded to FP16, as the checkpoint stores them (unchanged when they were FP16). */
    private static QuantizedTensor fp16Scales(QuantizedTensor q) {
        float[] s = q.scales();
        for (int i = 0; i < s.length; i++) {
            s[i] = HalfFloats.fp16ToFloat(HalfFloats.floatToFp16(s[i]));
        }
        byte[] packed = new byte[q.packedCodes().remaining()];
        q.packedCodes().get(packed);
        return new QuantizedTensor(
                q.name(),
                q.scheme(),
                q.rows(),
                q.cols(),
                q.packOrder(),
                packed,
                s,
                q.zeros(),
                q.hasGIdx() ? q.gIdx() : null);
    }
}
