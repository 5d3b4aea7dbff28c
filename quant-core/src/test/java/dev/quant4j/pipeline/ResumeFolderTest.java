package dev.quant4j.pipeline;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.quant4j.io.MalformedTensorFileException;
import dev.quant4j.model.HuggingFaceLlama;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.model.TokenSampler;
import dev.quant4j.pipeline.DecoderQuantizer.LayerReport;
import dev.quant4j.pipeline.DecoderQuantizer.Method;
import dev.quant4j.pipeline.DecoderQuantizer.Setting;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.testing.Pools;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A block-by-block GPTQ that saves its state after each block ({@link QuantizedDecoderFile#writeStreamed(Path,
 * HuggingFaceLlama.Checkpoint, DecoderQuantizer, List, String, DecoderQuantizer.BlockSink, ResumeFolder)}), stopped
 * after any block and continued, writes the bytes an uninterrupted run writes; a state of another run, or a damaged
 * one, is refused naming why. stories260K's shapes (5 blocks) as a sharded BF16 Hugging Face folder.
 */
class ResumeFolderTest {

    @TempDir
    static Path dir;

    static Path model;
    static List<int[]> calibration;

    /** Thrown by an observer to stop a run after a block, as a killed process would stop. */
    static final class Stop extends RuntimeException {
        Stop(int block) {
            super("stopped after block " + block);
        }
    }

    @BeforeAll
    static void folder() throws Exception {
        model = StreamedDecoderTest.shardedBf16(dir.resolve("hf"));
        LlamaDecoder fp32 = QuantizedDecoderFile.readSource(model).decoder(Pools.TWO);
        calibration = TokenSampler.sample(fp32, 4, 24, 1, 1.0, 1);
    }

    static Stream<Arguments> stops() {
        Setting plain = new Setting(Method.GPTQ, 4, 32, false, false);
        Setting actOrder = new Setting(Method.GPTQ, 3, 32, true, true);
        return Stream.of(
                Arguments.of(plain, 0),
                Arguments.of(plain, 2),
                // every block done, stopped while the other tensors were written: nothing left to quantize
                Arguments.of(plain, 4),
                Arguments.of(actOrder, 1));
    }

    @ParameterizedTest
    @MethodSource("stops")
    void aRunStoppedAfterABlockContinuesToTheSameBytes(Setting setting, int stopAfter) throws Exception {
        String name = setting.label().replace(' ', '_') + "-" + stopAfter;
        Plain reference = plain(setting);
        Path plain = reference.file();
        List<LayerReport> plainReports = reference.reports();
        List<Map<String, QuantizedWeight>> plainWeights = reference.weights();

        Path out = dir.resolve(name + ".safetensors");
        ResumeFolder resume = folder(out, setting, calibration);
        assertThatThrownBy(() -> run(out, setting, calibration, resume, (b, w, r) -> {
                    if (b == stopAfter) {
                        throw new Stop(b);
                    }
                }))
                .isInstanceOf(Stop.class);
        assertThat(out).doesNotExist();
        ResumeFolder.State state = resume.read().orElseThrow();
        assertThat(state.done()).isEqualTo(stopAfter + 1);
        assertThat(state.layers()).isEqualTo(5);
        assertThat(state.blocks().get(0).reports()).containsExactlyElementsOf(plainReports.subList(0, 7));
        try (Stream<Path> files = Files.list(resume.dir())) {
            List<String> names =
                    files.map(p -> p.getFileName().toString()).sorted().toList();
            // the inputs of the next block alone; none after the last block
            assertThat(names)
                    .containsExactlyElementsOf(
                            stopAfter < 4
                                    ? List.of(
                                            ResumeFolder.inputsName(stopAfter + 1),
                                            "lock",
                                            "state.json",
                                            "tensors.spill")
                                    : List.of("lock", "state.json", "tensors.spill"));
        }
        if (stopAfter < 4) {
            // tokens x hidden x 4 bytes
            assertThat(Files.size(resume.dir().resolve(state.inputs()))).isEqualTo(4L * 24 * 64 * 4);
        }

        List<Integer> seen = new ArrayList<>();
        List<Map<String, QuantizedWeight>> weights = new ArrayList<>();
        List<LayerReport> reports = run(out, setting, calibration, resume, (b, w, r) -> {
            seen.add(b);
            weights.add(new LinkedHashMap<>(w));
        });
        assertThat(Files.mismatch(plain, out)).isEqualTo(-1L);
        assertThat(resume.dir()).doesNotExist();
        assertThat(reports).isEqualTo(plainReports);
        assertThat(seen).containsExactly(0, 1, 2, 3, 4);
        // the finished blocks' weights read back from the spill are the ones the run made
        for (int b = 0; b < 5; b++) {
            assertThat(weights.get(b).keySet())
                    .containsExactlyElementsOf(plainWeights.get(b).keySet());
            for (String t : weights.get(b).keySet()) {
                assertThat(weights.get(b).get(t).dequantize().toArray())
                        .as(t)
                        .containsExactly(plainWeights.get(b).get(t).dequantize().toArray());
            }
        }
    }

    @Test
    void anUninterruptedRunLeavesNoFolderAndTheFileTheRunWithoutOneWrites() throws Exception {
        Setting setting = new Setting(Method.GPTQ, 4, 32, false, false);
        Path plain = plain(setting).file();
        Path out = dir.resolve("uninterrupted.safetensors");
        ResumeFolder resume = folder(out, setting, calibration);
        run(out, setting, calibration, resume, null);
        assertThat(Files.mismatch(plain, out)).isEqualTo(-1L);
        assertThat(resume.dir()).doesNotExist();
    }

    @Test
    void anotherRunsStateIsRefusedNamingWhatDiffersAndLeftAsItWas() throws Exception {
        Setting setting = new Setting(Method.GPTQ, 4, 32, false, false);
        Path out = dir.resolve("other.safetensors");
        ResumeFolder resume = folder(out, setting, calibration);
        stopAfter(out, setting, resume, 1);
        byte[] state = Files.readAllBytes(resume.dir().resolve(ResumeFolder.STATE));
        long spill = Files.size(resume.spill());

        List<int[]> shorter = new ArrayList<>();
        for (int[] seq : calibration) {
            shorter.add(java.util.Arrays.copyOf(seq, 16));
        }
        assertThatThrownBy(() -> run(out, setting, shorter, folder(out, setting, shorter), null))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining(resume.dir() + " holds the state of a run on another calibration (4 sequences"
                        + " of 24 tokens, ids sha256 ")
                .hasMessageContaining(" there, 4 sequences of 16 tokens, ids sha256 ");
        Setting sym = new Setting(Method.GPTQ, 4, 32, true, false);
        assertThatThrownBy(() -> run(out, sym, calibration, folder(out, sym, calibration), null))
                .hasMessageContaining("another setting (gptq: GPTQ int4 g32 there, gptq: GPTQ int4 g32 sym here)");
        Setting damp = setting.withDamp(0.05).withStaticGroups(true);
        assertThatThrownBy(() -> run(out, damp, calibration, folder(out, damp, calibration), null))
                .hasMessageContaining(
                        "another setting (gptq: GPTQ int4 g32 there, gptq: GPTQ int4 g32 static damp 0.05 here)");
        Setting mse = setting.withMse(true);
        assertThatThrownBy(() -> run(out, mse, calibration, folder(out, mse, calibration), null))
                .hasMessageContaining("another setting (gptq: GPTQ int4 g32 there, gptq: GPTQ int4 g32 mse here)");
        ResumeFolder otherModel = ResumeFolder.of(
                out,
                new ResumeFolder.Identity(
                        List.of("config.json sha256 0000000000000000"),
                        resume.identity().setting(),
                        resume.identity().calibration()));
        assertThatThrownBy(() -> run(out, setting, calibration, otherModel, null))
                .hasMessageContaining("another model (config.json sha256 ")
                .hasMessageContaining(" there, config.json sha256 0000000000000000 here)");
        assertThat(Files.readAllBytes(resume.dir().resolve(ResumeFolder.STATE))).isEqualTo(state);
        assertThat(Files.size(resume.spill())).isEqualTo(spill);
        assertThat(out).doesNotExist();
    }

    @Test
    void theModelsIdentityIsItsConfigIndexAndShardSizes() throws Exception {
        Setting setting = new Setting(Method.GPTQ, 4, 32, false, false);
        ResumeFolder.Identity id = ResumeFolder.Identity.of(model, setting, "gptq", calibration);
        assertThat(id.model()).hasSize(4);
        assertThat(id.model().get(0)).matches("config.json sha256 [0-9a-f]{16}");
        assertThat(id.model().get(1)).matches("model.safetensors.index.json sha256 [0-9a-f]{16}");
        assertThat(id.model().get(2))
                .isEqualTo("model-00001-of-00002.safetensors "
                        + Files.size(model.resolve("model-00001-of-00002.safetensors")) + " bytes");
        assertThat(id.model().get(3)).matches("model-00002-of-00002.safetensors \\d+ bytes");
        assertThat(id.setting()).isEqualTo("gptq: GPTQ int4 g32");
        assertThat(id.calibration()).matches("4 sequences of 24 tokens, ids sha256 [0-9a-f]{16}");
        assertThat(id.difference(ResumeFolder.Identity.of(model, setting, "gptq", calibration)))
                .isNull();
        // one token changed changes the hash
        List<int[]> changed = new ArrayList<>(calibration);
        int[] first = calibration.get(0).clone();
        first[5] = (first[5] + 1) % 512;
        changed.set(0, first);
        assertThat(ResumeFolder.Identity.of(model, setting, "gptq", changed).calibration())
                .isNotEqualTo(id.calibration());
    }

    @Test
    void damagedFilesAreRefusedNamingThem() throws Exception {
        Setting setting = new Setting(Method.GPTQ, 4, 32, false, false);
        Path out = dir.resolve("damaged.safetensors");
        ResumeFolder resume = folder(out, setting, calibration);
        stopAfter(out, setting, resume, 2);
        Path inputs = resume.dir().resolve(ResumeFolder.inputsName(3));
        byte[] good = Files.readAllBytes(inputs);
        byte[] bad = good.clone();
        bad[100] ^= 1;
        Files.write(inputs, bad);
        assertThatThrownBy(() -> run(out, setting, calibration, resume, null))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageContaining(inputs + ": its bytes do not match the CRC-32C saved in state.json");
        Files.write(inputs, java.util.Arrays.copyOf(good, good.length - 4));
        assertThatThrownBy(() -> run(out, setting, calibration, resume, null))
                .hasMessageContaining(inputs + ": " + (good.length - 4) + " bytes, " + good.length + " saved");
        Files.write(inputs, good);

        byte[] spill = Files.readAllBytes(resume.spill());
        byte[] flipped = spill.clone();
        flipped[spill.length / 2] ^= 1;
        Files.write(resume.spill(), flipped);
        assertThatThrownBy(() -> run(out, setting, calibration, resume, null))
                .hasMessageContaining(resume.spill() + ": block 1's tensors do not match the CRC-32C");
        Files.write(resume.spill(), java.util.Arrays.copyOf(spill, 100));
        assertThatThrownBy(() -> run(out, setting, calibration, resume, null))
                .hasMessageContaining(resume.spill() + ": 100 bytes, the ");
        Files.writeString(resume.dir().resolve(ResumeFolder.STATE), "{\"quant4j_resume\": 7}");
        assertThatThrownBy(resume::read)
                .hasMessageContaining("state.json: not a resume state quant4j reads (quant4j_resume is 7, expected 1)");
        assertThat(out).doesNotExist();
    }

    @Test
    void bytesAfterTheLastFinishedBlockAreCutOff() throws Exception {
        Setting setting = new Setting(Method.GPTQ, 4, 32, false, false);
        Path plain = plain(setting).file();
        Path out = dir.resolve("cut.safetensors");
        ResumeFolder resume = folder(out, setting, calibration);
        stopAfter(out, setting, resume, 1);
        // a block half written when the run stopped, and a stale inputs file
        Files.write(resume.spill(), new byte[12345], StandardOpenOption.APPEND);
        Files.write(resume.dir().resolve(ResumeFolder.inputsName(1)), new byte[8]);
        run(out, setting, calibration, resume, null);
        assertThat(Files.mismatch(plain, out)).isEqualTo(-1L);
        assertThat(resume.dir()).doesNotExist();
    }

    @Test
    void aRunThatStopsBeforeItsFirstBlockLeavesNoFolder() throws Exception {
        Setting setting = new Setting(Method.GPTQ, 4, 32, false, false);
        Path out = dir.resolve("early.safetensors");
        List<int[]> outside = List.of(new int[] {1, 2, 512});
        ResumeFolder resume = folder(out, setting, outside);
        assertThatThrownBy(() -> run(out, setting, outside, resume, null))
                .hasMessageContaining("token 2 has id 512, the vocabulary has 512");
        assertThat(resume.dir()).doesNotExist();
        Setting rtn = new Setting(Method.RTN, 4, 32, false, false);
        assertThatThrownBy(() -> run(out, rtn, calibration, resume, null))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("GPTQ only, not RTN int4 g32");
        assertThat(resume.dir()).doesNotExist();
    }

    /** An uninterrupted run without a resume folder: its file, reports and each block's weights. */
    record Plain(Path file, List<LayerReport> reports, List<Map<String, QuantizedWeight>> weights) {}

    private static final Map<Setting, Plain> PLAIN = new java.util.HashMap<>();

    private static Plain plain(Setting setting) throws IOException {
        Plain p = PLAIN.get(setting);
        if (p == null) {
            Path file = dir.resolve(setting.label().replace(' ', '_') + "-plain.safetensors");
            List<Map<String, QuantizedWeight>> weights = new ArrayList<>();
            try (HuggingFaceLlama.Checkpoint files = HuggingFaceLlama.open(model, Pools.TWO)) {
                List<LayerReport> reports = QuantizedDecoderFile.writeStreamed(
                        file,
                        files,
                        new DecoderQuantizer(setting, Pools.TWO),
                        calibration,
                        "gptq",
                        (b, w, r) -> weights.add(new LinkedHashMap<>(w)));
                p = new Plain(file, reports, weights);
            }
            PLAIN.put(setting, p);
        }
        return p;
    }

    @Test
    void twoRunsNeverWriteOneFolder() throws Exception {
        Setting setting = new Setting(Method.GPTQ, 4, 32, false, false);
        Path out = dir.resolve("locked.safetensors");
        ResumeFolder resume = folder(out, setting, calibration);
        // a run after block 0 (its state saved), and a second run on the same output meanwhile
        String[] second = {null};
        assertThatThrownBy(() -> run(out, setting, calibration, resume, (b, w, r) -> {
                    if (b == 0) {
                        try {
                            run(out, setting, calibration, folder(out, setting, calibration), null);
                        } catch (IllegalArgumentException e) {
                            second[0] = e.getMessage();
                        }
                        throw new Stop(b);
                    }
                }))
                .isInstanceOf(Stop.class);
        assertThat(second[0])
                .isEqualTo(resume.dir() + " is in use by another run (it holds "
                        + resume.dir().resolve("lock") + "); wait for it or stop it");
        assertThat(resume.read().orElseThrow().done()).isEqualTo(1);
        // released when the first run stopped
        run(out, setting, calibration, resume, null);
        assertThat(Files.mismatch(plain(setting).file(), out)).isEqualTo(-1L);
        assertThat(resume.dir()).doesNotExist();
    }

    private static void stopAfter(Path out, Setting setting, ResumeFolder resume, int block) {
        assertThatThrownBy(() -> run(out, setting, calibration, resume, (b, w, r) -> {
                    if (b == block) {
                        throw new Stop(b);
                    }
                }))
                .isInstanceOf(Stop.class);
    }

    private static ResumeFolder folder(Path out, Setting setting, List<int[]> calibration) throws IOException {
        return ResumeFolder.of(out, ResumeFolder.Identity.of(model, setting, "gptq", calibration));
    }

    private static List<LayerReport> run(
            Path out,
            Setting setting,
            List<int[]> calibration,
            ResumeFolder resume,
            DecoderQuantizer.BlockSink observer)
            throws IOException {
        try (HuggingFaceLlama.Checkpoint files = HuggingFaceLlama.open(model, Pools.TWO)) {
            return QuantizedDecoderFile.writeStreamed(
                    out, files, new DecoderQuantizer(setting, Pools.TWO), calibration, "gptq", observer, resume);
        }
    }
}
