package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.quant4j.cli.QuantCliTest.Result;
import dev.quant4j.io.SafeTensorsCheckpoint;
import dev.quant4j.io.SafeTensorsWriter;
import dev.quant4j.tensor.Gaussian;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/** {@code quant quantize --max-shard-size}: sizes read as transformers reads them, the folder written, misuse refused. */
class MaxShardSizeTest {

    @TempDir
    Path dir;

    @ParameterizedTest
    @CsvSource({
        "5GB, 5000000000",
        "500MB, 500000000",
        "100KB, 100000",
        "5gB, 5000000000",
        "2GiB, 2147483648",
        "512mib, 536870912",
        "3KiB, 3072",
        "8Gb, 1000000000",
        "800mb, 100000000",
        "1234, 1234",
    })
    void sizesAreReadAsTransformersReadsThem(String text, long bytes) {
        assertThat(ShardSize.parse(text)).isEqualTo(bytes);
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "GB", "5 GB", "-5GB", "0", "0MB", "5.5GB", "5TB", "1e9", "99999999999999999999GB"})
    void anythingElseIsRefusedByValue(String text) {
        assertThatThrownBy(() -> ShardSize.parse(text))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("--max-shard-size '" + text + "' is not a size");
    }

    /** GGUF output also takes gguf-split's {@code --split-max-size} forms: digits then M or G, powers of 10. */
    @ParameterizedTest
    @CsvSource({"4G, 4000000000", "500M, 500000000", "1M, 1000000", "100KB, 100000", "2GiB, 2147483648", "77, 77"})
    void ggufSizesAlsoReadAsGgufSplitReadsThem(String text, long bytes) {
        assertThat(ShardSize.parseGguf(text)).isEqualTo(bytes);
    }

    @ParameterizedTest
    @ValueSource(strings = {"M", "0M", "-1G", "5.5G", "1 G", "4g0", "99999999999999999999G"})
    void ggufSizesRefuseAnythingElse(String text) {
        assertThatThrownBy(() -> ShardSize.parseGguf(text))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("--max-shard-size '" + text + "' is not a size");
    }

    @Test
    void aFileBecomesAShardedFolderAndMisuseIsRefused() throws Exception {
        SafeTensorsWriter w = new SafeTensorsWriter();
        for (int i = 0; i < 4; i++) {
            w.addF32(
                    "model.layers." + i + ".mlp.up_proj.weight",
                    new long[] {64, 256},
                    Gaussian.samples(i, 64 * 256, 0.05));
        }
        Path in = dir.resolve("model.safetensors");
        w.write(in);
        Path out = dir.resolve("q");
        Result r = QuantCliTest.run(
                "quantize",
                "--method",
                "rtn",
                "--bits",
                "4",
                "--group-size",
                "64",
                "--max-shard-size",
                "20KB",
                "--in",
                in.toString(),
                "--out",
                out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out())
                .contains(
                        "3 files (model-00001-of-00002.safetensors, model-00002-of-00002.safetensors, model.safetensors.index.json)");
        try (SafeTensorsCheckpoint c = SafeTensorsCheckpoint.open(out)) {
            assertThat(c.shards()).hasSize(2); // 9,472 bytes a weight: two fit in 20,000
        }
        String[][] misuse = {
            {"--format", "onnx", "--out", dir.resolve("m.onnx").toString()},
            {"--out", dir.resolve("m2.safetensors").toString()},
            {"--max-shard-size", "5 GB", "--out", dir.resolve("m3").toString()},
        };
        String[] messages = {
            "--max-shard-size applies to a safetensors checkpoint",
            "--max-shard-size writes a folder of shards and its index: --out is a folder, not ",
            "--max-shard-size '5 GB' is not a size",
        };
        for (int i = 0; i < misuse.length; i++) {
            String[] args = Stream.of(
                            Stream.of("quantize", "--method", "rtn", "--in", in.toString()),
                            Stream.of(misuse[i]).anyMatch(a -> a.equals("--max-shard-size"))
                                    ? Stream.<String>empty()
                                    : Stream.of("--max-shard-size", "1MB"),
                            Stream.of(misuse[i]))
                    .flatMap(s -> s)
                    .toArray(String[]::new);
            r = QuantCliTest.run(args);
            assertThat(r.code()).as(String.join(" ", args)).isEqualTo(2);
            assertThat(r.err()).contains(messages[i]);
        }
        r = QuantCliTest.run(
                "quantize",
                "--method",
                "gptq",
                "--calib",
                in.toString(),
                "--in",
                in.toString(),
                "--max-shard-size",
                "1MB",
                "--out",
                dir.resolve("m4").toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err())
                .contains("and to --format gguf (split as llama.cpp's gguf-split splits a model); not"
                        + " --method gptq --in " + in);
        try (Stream<Path> files = Files.list(dir)) {
            assertThat(files.map(p -> p.getFileName().toString()).sorted()).containsExactly("model.safetensors", "q");
        }
    }
}
