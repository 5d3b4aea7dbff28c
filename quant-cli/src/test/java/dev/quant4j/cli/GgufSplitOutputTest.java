package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.cli.QuantCliTest.Result;
import dev.quant4j.io.Gguf;
import dev.quant4j.io.GgufSplits;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code quant quantize --format gguf --max-shard-size SIZE | --split-max-tensors N --out NAME.gguf} writes the model
 * split as llama.cpp's {@code gguf-split} splits it, {@code NAME-00001-of-0000N.gguf} ..., each tensor's bytes those of
 * the single file; every command that reads GGUF reads such a model from any of its files.
 */
class GgufSplitOutputTest {

    @TempDir
    Path dir;

    private static Result quantize(Path in, Path out, String... more) {
        List<String> args = new ArrayList<>(List.of(
                "quantize",
                "--format",
                "gguf",
                "--gguf-type",
                "q8_0",
                "--method",
                "rtn",
                "--in",
                in.toString(),
                "--out",
                out.toString()));
        args.addAll(List.of(more));
        return QuantCliTest.run(args.toArray(String[]::new));
    }

    private List<Path> files(String glob) throws Exception {
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p ->
                            dir.getFileSystem().getPathMatcher("glob:" + glob).matches(p.getFileName()))
                    .sorted()
                    .toList();
        }
    }

    @Test
    void aSafetensorsFileSplitBySizeHoldsTheSingleFilesTensors() throws Exception {
        Path in = GgufStreamOutputTest.safetensors(dir);
        Path single = dir.resolve("single.gguf");
        assertThat(quantize(in, single).code()).isZero();
        Path out = dir.resolve("model.gguf");
        Result r = quantize(in, out, "--max-shard-size", "20KB", "--threads", "2");
        assertThat(r.code()).as(r.err()).isZero();
        List<Path> splits = files("model-*-of-*.gguf");
        assertThat(splits).isEqualTo(GgufSplits.paths(dir.resolve("model"), splits.size()));
        assertThat(splits).hasSizeGreaterThan(2);
        assertThat(Files.exists(out)).isFalse();
        assertThat(r.out())
                .contains("wrote " + splits.size() + " splits model-00001-of-0000" + splits.size()
                        + ".gguf ... model-0000"
                        + splits.size() + "-of-0000" + splits.size() + ".gguf (3 quantized as q8_0, 3 unchanged, 2"
                        + " metadata keys)");
        try (Gguf whole = Gguf.open(single);
                Gguf model = Gguf.open(splits.get(1))) {
            assertThat(model.metadata()).isEqualTo(whole.metadata());
            assertThat(model.tensors().stream().map(Gguf.TensorInfo::name))
                    .containsExactlyElementsOf(
                            whole.tensors().stream().map(Gguf.TensorInfo::name).toList());
            for (Gguf.TensorInfo t : whole.tensors()) {
                assertThat(model.readBytes(t.name())).as(t.name()).isEqualTo(whole.readBytes(t.name()));
            }
        }
        // every split holds at most 20,000 bytes of tensor data (each tensor padded to 32) unless it holds one tensor
        for (Path p : splits) {
            try (Gguf g = Gguf.openFile(p)) {
                long bytes = g.tensors().stream()
                        .mapToLong(t -> (t.bytes() + 31) / 32 * 32)
                        .sum();
                assertThat(bytes <= 20_000 || g.tensors().size() == 1)
                        .as(p.toString())
                        .isTrue();
            }
        }
    }

    /**
     * A GGUF model split every two tensors; quantized again from any of its files, inspected and dequantized, it is the
     * single file.
     */
    @Test
    void aSplitGgufInputReadsAsTheSingleFile() throws Exception {
        Path in = GgufStreamOutputTest.ggufModel(dir);
        Path single = dir.resolve("single.gguf");
        assertThat(quantize(in, single).code()).isZero();
        Result r = quantize(in, dir.resolve("s.gguf"), "--split-max-tensors", "2");
        assertThat(r.code()).as(r.err()).isZero();
        List<Path> splits = GgufSplits.paths(dir.resolve("s"), 3);
        assertThat(files("s-*.gguf")).isEqualTo(splits);

        Path again = dir.resolve("again.gguf");
        r = quantize(splits.get(2), again);
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(Files.readAllBytes(again)).isEqualTo(Files.readAllBytes(single));

        Result a = QuantCliTest.run("inspect", splits.get(0).toString());
        Result b = QuantCliTest.run("inspect", single.toString());
        assertThat(a.code()).as(a.err()).isZero();
        assertThat(a.out()).isEqualTo(b.out()).contains("total: 5 tensors");

        Path fromSplits = dir.resolve("from-splits.safetensors");
        Path fromSingle = dir.resolve("from-single.safetensors");
        assertThat(QuantCliTest.run("dequantize", "--in", splits.get(1).toString(), "--out", fromSplits.toString())
                        .code())
                .isZero();
        assertThat(QuantCliTest.run("dequantize", "--in", single.toString(), "--out", fromSingle.toString())
                        .code())
                .isZero();
        assertThat(Files.readAllBytes(fromSplits)).isEqualTo(Files.readAllBytes(fromSingle));

        Files.delete(splits.get(1));
        r = QuantCliTest.run("inspect", splits.get(0).toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains(splits.get(0) + ": split 2 of 3, " + splits.get(1) + ", is missing");
    }

    /** stories260K split every ten tensors: the files llama-gguf-split wrote ({@code GgufSplitLlamaCppTest}). */
    @Test
    void aWholeDecoderSplitsAsGgufSplitSplitsIt() throws Exception {
        Result r = QuantCliTest.run(
                "quantize",
                "--model",
                QuantizeDecoderGgufTest.STORIES.toString(),
                "--method",
                "rtn",
                "--format",
                "gguf",
                "--gguf-type",
                "q8_0",
                "--split-max-tensors",
                "10",
                "--out",
                dir.resolve("t10.gguf").toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("wrote 5 splits t10-00001-of-00005.gguf ... t10-00005-of-00005.gguf (llama, 47");
        List<Path> splits = files("t10-*.gguf");
        assertThat(splits).isEqualTo(GgufSplits.paths(dir.resolve("t10"), 5));
        assertThat(GgufStreamOutputTest.sha256(splits.get(0)))
                .isEqualTo("cb9f0943707354b0b7965a209531c23c361bfce3d8cdd3c43334d11957d20100");
        assertThat(GgufStreamOutputTest.sha256(splits.get(4)))
                .isEqualTo("90b487057bffa38152d916550324aed65ec9671348fd287cadd4b84d4377bb0c");
    }

    @Test
    void splitsNamedAsTheInputAreRefusedUnlessOverwriteAndMisuseIsRefused() throws Exception {
        Path in = GgufStreamOutputTest.ggufModel(dir);
        assertThat(quantize(in, dir.resolve("s.gguf"), "--split-max-tensors", "2")
                        .code())
                .isZero();
        List<Path> splits = GgufSplits.paths(dir.resolve("s"), 3);
        byte[] first = Files.readAllBytes(splits.get(0));
        Result r = quantize(splits.get(0), dir.resolve("s.gguf"), "--split-max-tensors", "3");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err())
                .contains("--out " + dir.resolve("s.gguf") + " would be split into files named as the input "
                        + splits.get(0));
        r = quantize(splits.get(0), splits.get(1));
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("--out " + splits.get(1) + " is the --in file " + splits.get(1));
        assertThat(Files.readAllBytes(splits.get(0))).isEqualTo(first);

        r = quantize(splits.get(0), dir.resolve("s.gguf"), "--split-max-tensors", "2", "--overwrite");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(Files.readAllBytes(splits.get(0))).isEqualTo(first);

        String[][] misuse = {
            {"--split-max-tensors", "0"},
            {"--max-shard-size", "5X"},
        };
        String[] messages = {"--split-max-tensors 0 must be at least 1", "--max-shard-size '5X' is not a size"};
        for (int i = 0; i < misuse.length; i++) {
            r = quantize(in, dir.resolve("m.gguf"), misuse[i]);
            assertThat(r.code()).as(String.join(" ", misuse[i])).isEqualTo(2);
            assertThat(r.err()).contains(messages[i]);
        }
        r = QuantCliTest.run(
                "quantize",
                "--method",
                "rtn",
                "--in",
                GgufStreamOutputTest.safetensors(dir).toString(),
                "--split-max-tensors",
                "2",
                "--out",
                dir.resolve("m.safetensors").toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("--split-max-tensors applies to --format gguf only");
        assertThat(files("m.*")).isEmpty();
        assertThat(files("m-*")).isEmpty();
    }
}
