package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code quant quantize --model DIR --method gptq ... --resume}: a block-by-block GPTQ stopped after a block (by the
 * test hook {@link DecoderStreamOutput#afterBlock}, as a killed process stops) continues from its saved state into the
 * file an uninterrupted run writes, byte for byte, with the same report lines; a state of another run, or a state
 * without {@code --resume}, is refused in one line and left as it was.
 */
class ResumeCliTest {

    @TempDir
    Path dir;

    Path hf;
    Path tokens;

    @BeforeEach
    void folder() throws Exception {
        TextCalibrationTest fixture = new TextCalibrationTest();
        fixture.dir = dir;
        hf = fixture.folder(
                "hf", TextCalibrationTest.VOCAB, TextCalibrationTest.tokenizerJson(TextCalibrationTest.WORDS.size()));
        List<String> text = TextCalibrationTest.sentences(24, 3);
        tokens = dir.resolve("calib-ids.txt");
        Files.writeString(
                tokens,
                text.stream()
                        .map(s -> TextCalibrationTest.idLine(TextCalibrationTest.ids(s)))
                        .collect(Collectors.joining("\n", "", "\n")));
        System.setProperty(DecoderStreamOutput.PROPERTY, "always");
    }

    @AfterEach
    void clear() {
        System.clearProperty(DecoderStreamOutput.PROPERTY);
        DecoderStreamOutput.afterBlock = b -> {};
    }

    @Test
    void aStoppedRunResumedWritesTheUninterruptedFile() throws Exception {
        Path a = dir.resolve("a.safetensors");
        QuantCliTest.Result whole = run(a, "16");
        assertThat(whole.code()).as(whole.err()).isZero();
        assertThat(Path.of(a + ".resume")).doesNotExist();

        Path b = dir.resolve("b.safetensors");
        Path state = Path.of(b.toAbsolutePath() + ".resume");
        DecoderStreamOutput.afterBlock = block -> {
            if (block == 2) {
                throw new IllegalStateException("stopped after block " + block);
            }
        };
        QuantCliTest.Result stopped = run(b, "16");
        assertThat(stopped.code()).isEqualTo(Quant.INTERNAL);
        assertThat(b).doesNotExist();
        assertThat(state.resolve("state.json")).exists();
        assertThat(lastLine(stopped.err()))
                .isEqualTo("quant: internal error: java.lang.IllegalStateException: stopped after block 2; 3 of 5"
                        + " blocks are saved in " + state + ": the same command with --resume continues from block 4");

        // without --resume, the state is not started over
        QuantCliTest.Result refused = run(b, "16");
        assertThat(refused.code()).isEqualTo(Quant.BAD_INPUT);
        assertThat(refused.err())
                .isEqualTo("quant: " + state + " holds the state of an interrupted run: add --resume to continue it,"
                        + " or delete the folder to start over" + System.lineSeparator());

        DecoderStreamOutput.afterBlock = block -> {};
        QuantCliTest.Result resumed = run(b, "16", "--resume");
        assertThat(resumed.code()).as(resumed.err()).isZero();
        assertThat(resumed.err()).contains("quant: resuming after block 3/5 from " + state + "\n");
        assertThat(resumed.err()).doesNotContain("block 3/5 done").contains("quant: block 4/5 done (");
        assertThat(Files.mismatch(a, b)).isEqualTo(-1L);
        assertThat(state).doesNotExist();
        // every layer's line, the restored blocks' read back from the saved state
        assertThat(layerLines(resumed.out())).hasSize(35).containsExactlyElementsOf(layerLines(whole.out()));
        assertThat(resumed.out().replace(b.toString(), "OUT").replaceAll("; [0-9.]+ s\\)", ")"))
                .isEqualTo(whole.out().replace(a.toString(), "OUT").replaceAll("; [0-9.]+ s\\)", ")"));
    }

    @Test
    void anOutOfMemoryErrorKeepsTheStateAndSaysHowToContinue() throws Exception {
        Path out = dir.resolve("oom.safetensors");
        Path state = Path.of(out.toAbsolutePath() + ".resume");
        DecoderStreamOutput.afterBlock = block -> {
            if (block == 4) {
                throw new OutOfMemoryError("Java heap space");
            }
        };
        QuantCliTest.Result stopped = run(out, "16");
        assertThat(stopped.code()).isEqualTo(Quant.INTERNAL);
        assertThat(lastLine(stopped.err()))
                .startsWith("quant: out of memory: the Java heap (at most ")
                .endsWith("; 5 of 5 blocks are saved in " + state
                        + ": the same command with --resume continues with the file's other tensors");
        assertThat(out).doesNotExist();
        DecoderStreamOutput.afterBlock = block -> {};
        QuantCliTest.Result resumed = run(out, "16", "--resume");
        assertThat(resumed.code()).as(resumed.err()).isZero();
        assertThat(resumed.err()).contains("quant: resuming after block 5/5 from " + state);
        assertThat(layerLines(resumed.out())).hasSize(35);
        assertThat(state).doesNotExist();
        assertThat(out).exists();
    }

    @Test
    void anotherRunsStateIsRefusedInOneLineNamingWhatDiffers() throws Exception {
        Path out = dir.resolve("c.safetensors");
        Path state = Path.of(out.toAbsolutePath() + ".resume");
        DecoderStreamOutput.afterBlock = block -> {
            if (block == 1) {
                throw new IllegalStateException("stopped");
            }
        };
        assertThat(run(out, "16").code()).isEqualTo(Quant.INTERNAL);
        DecoderStreamOutput.afterBlock = block -> {};
        byte[] saved = Files.readAllBytes(state.resolve("state.json"));
        long spill = Files.size(state.resolve("tensors.spill"));

        QuantCliTest.Result seqLen = run(out, "8", "--resume");
        assertThat(seqLen.code()).isEqualTo(Quant.BAD_INPUT);
        assertThat(lastLine(seqLen.err()))
                .startsWith("quant: --resume: " + state + " holds the state of a run on another calibration (")
                .contains(" sequences of 16 tokens, ids sha256 ")
                .contains(" there, ")
                .contains(" sequences of 8 tokens, ids sha256 ")
                .endsWith(" here); run the command that made it, or delete the folder to start over");
        assertThat(seqLen.err().lines().filter(l -> l.contains("--resume"))).hasSize(1);

        QuantCliTest.Result sym = run(out, "16", "--resume", "--sym");
        assertThat(sym.code()).isEqualTo(Quant.BAD_INPUT);
        assertThat(lastLine(sym.err()))
                .contains("holds the state of a run on another setting (gptq: GPTQ int4 g32 there, gptq: GPTQ int4"
                        + " g32 sym here)");
        assertThat(Files.readAllBytes(state.resolve("state.json"))).isEqualTo(saved);
        assertThat(Files.size(state.resolve("tensors.spill"))).isEqualTo(spill);
        assertThat(out).doesNotExist();
    }

    @Test
    void resumeWithNoStateStartsFromBlockZero() throws Exception {
        Path out = dir.resolve("d.safetensors");
        // whatever the folder's size: --resume reads it block by block
        System.clearProperty(DecoderStreamOutput.PROPERTY);
        QuantCliTest.Result r = run(out, "16", "--resume");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err())
                .contains("quant: --resume: no saved state in " + out.toAbsolutePath() + ".resume; starting from block"
                        + " 0")
                .contains("read block by block");
        assertThat(layerLines(r.out())).hasSize(35);
        assertThat(Path.of(out + ".resume")).doesNotExist();
    }

    @Test
    void resumeIsRefusedWhereARunCannotBeContinued() throws Exception {
        Path out = dir.resolve("e.safetensors");
        List<List<String>> cases = List.of(
                List.of("--method", "rtn", "--resume"),
                List.of("--method", "gptq", "--calib-sample", "4", "--resume"),
                List.of("--method", "gptq", "--format", "gptq", "--calib-tokens", tokens.toString(), "--resume"),
                List.of("--method", "gptq", "--format", "gguf", "--calib-tokens", tokens.toString(), "--resume"));
        List<String> expected = List.of(
                // a folder under rtn is quantized tensor by tensor, as a checkpoint
                "; this command quantizes tensor by tensor",
                ", not sequences sampled from the model (it needs the whole model in memory)",
                ", not --format gptq",
                ", not --format gguf");
        for (int i = 0; i < cases.size(); i++) {
            List<String> args = new ArrayList<>(List.of("quantize", "--model", hf.toString()));
            args.addAll(cases.get(i));
            args.addAll(List.of("--out", dir.resolve("e" + i) + (i == 3 ? ".gguf" : i == 2 ? "" : ".safetensors")));
            QuantCliTest.Result r = QuantCliTest.run(args.toArray(String[]::new));
            assertThat(r.code()).as(r.err()).isEqualTo(Quant.BAD_INPUT);
            assertThat(r.err())
                    .isEqualTo("quant: " + DecoderOutput.RESUMABLE + expected.get(i) + System.lineSeparator());
            assertThat(r.err().lines()).hasSize(1);
        }
        QuantCliTest.Result npy = QuantCliTest.run(
                "quantize",
                "--in",
                hf.resolve("config.json").toString(),
                "--method",
                "rtn",
                "--out",
                out.toString(),
                "--resume");
        assertThat(npy.code()).isEqualTo(Quant.BAD_INPUT);
        assertThat(npy.err())
                .isEqualTo("quant: " + DecoderOutput.RESUMABLE + "; this command quantizes tensor by tensor"
                        + System.lineSeparator());
    }

    private static String lastLine(String text) {
        List<String> lines = text.lines().toList();
        return lines.get(lines.size() - 1);
    }

    private static List<String> layerLines(String out) {
        return out.lines().filter(l -> l.startsWith("model.layers.")).toList();
    }

    private QuantCliTest.Result run(Path out, String seqLen, String... more) {
        List<String> args = new ArrayList<>(List.of(
                "quantize",
                "--model",
                hf.toString(),
                "--method",
                "gptq",
                "--group-size",
                "32",
                "--calib-tokens",
                tokens.toString(),
                "--seq-len",
                seqLen,
                "--out",
                out.toString(),
                "--threads",
                "2"));
        args.addAll(List.of(more));
        return QuantCliTest.run(args.toArray(String[]::new));
    }
}
