package dev.quant4j.io;

import static dev.quant4j.testing.FuzzContract.require;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.quant4j.testing.FuzzContract;
import dev.quant4j.testing.FuzzFolder;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Split GGUF models ({@link GgufSplitReader}): any files named as the splits of a model of two or three files (one
 * input, {@link FuzzFolder}; the first file present is the one opened) are read as one model or refused; what is read
 * is written again as one GGUF by {@link GgufWriter} and reads back the same metadata, tensors and bytes.
 */
class GgufSplitFuzzTest {

    /** The files of an input, in the order of its parts. */
    static final List<String> NAMES = List.of(
            "m-00001-of-00002.gguf",
            "m-00002-of-00002.gguf",
            "m-00001-of-00003.gguf",
            "m-00002-of-00003.gguf",
            "m-00003-of-00003.gguf");

    @FuzzTest
    void fuzz(byte[] input) {
        FuzzContract.check(input, GgufSplitFuzzTest::read, g -> {
            GgufWriter w = new GgufWriter().putAll(g.metadata());
            for (Gguf.TensorInfo t : g.tensors()) {
                w.addTensor(t.name(), t.ne(), t.type(), g.readBytes(t.name()));
            }
            Gguf again = Gguf.parse(w.toBytes(), "rewritten.gguf");
            require(again.metadata().equals(g.metadata()), "metadata differs after writing");
            require(again.tensors().size() == g.tensors().size(), "tensor count differs after writing");
            for (Gguf.TensorInfo t : g.tensors()) {
                Gguf.TensorInfo u = again.tensor(t.name());
                require(Arrays.equals(t.ne(), u.ne()) && t.type() == u.type(), "tensor '" + t.name() + "' differs");
                require(Arrays.equals(g.readBytes(t.name()), again.readBytes(t.name())), "bytes differ after writing");
            }
        });
    }

    @org.junit.jupiter.api.Test
    void theSeedsAreReadAsOneModel() throws Exception {
        Path dir = Path.of("src/test/resources/dev/quant4j/io/GgufSplitFuzzTestInputs/fuzz");
        for (String seed : List.of("seed-1-files", "seed-2-files", "seed-3-files")) {
            try (Gguf g = read(java.nio.file.Files.readAllBytes(dir.resolve(seed)))) {
                require(g.tensors().size() == 3, seed + ": " + g.tensors().size() + " tensors");
                require(g.metadata().get("general.name").value().equals("split seed"), seed + ": metadata");
                require(g.metadata().keySet().stream().noneMatch(GgufSplits::isSplitKey), seed + ": split keys");
                require(g.readBytes("c.weight")[2] == 5, seed + ": bytes of c.weight");
            }
        }
    }

    /** The model of the input's files, opened from the first one present, as {@link Gguf#open} opens a path. */
    static Gguf read(byte[] input) throws java.io.IOException {
        Map<String, byte[]> files = FuzzFolder.unpack(input, NAMES);
        if (files.isEmpty()) {
            throw new IllegalArgumentException("no file");
        }
        String first = files.keySet().iterator().next();
        Gguf file = Gguf.parse(files.get(first), first);
        return GgufSplitReader.open(file, Path.of(first), p -> {
            byte[] b = files.get(p.toString());
            return b == null ? null : Gguf.parse(b, p.toString());
        });
    }
}
