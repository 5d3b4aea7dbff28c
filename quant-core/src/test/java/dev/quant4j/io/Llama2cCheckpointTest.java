package dev.quant4j.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.quant4j.tensor.FloatMatrix;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The llama2.c reader on hand-made files (layout, the unshared head, every bad header named) and the writer: the real
 * stories260K written back byte for byte.
 */
class Llama2cCheckpointTest {

    @TempDir
    Path dir;

    /** A checkpoint whose float {@code i} (after the header) is {@code i}, so each tensor's place can be checked. */
    Path write(int dim, int hidden, int layers, int heads, int kvHeads, int vocab, int seqLen, int extraFloats)
            throws Exception {
        Llama2cCheckpoint.Header h =
                new Llama2cCheckpoint.Header(dim, hidden, layers, heads, kvHeads, Math.abs(vocab), seqLen, vocab > 0);
        long floats = (Llama2cCheckpoint.expectedBytes(h) - Llama2cCheckpoint.HEADER_BYTES) / 4 + extraFloats;
        ByteBuffer b = ByteBuffer.allocate(28 + (int) floats * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int v : new int[] {dim, hidden, layers, heads, kvHeads, vocab, seqLen}) {
            b.putInt(v);
        }
        for (int i = 0; i < floats; i++) {
            b.putFloat(i);
        }
        Path p = dir.resolve("m.bin");
        Files.write(p, b.array());
        return p;
    }

    @Test
    void tensorsComeInRunCsOrderUnderHuggingFaceNames() throws Exception {
        // dim 4, hidden 6, 2 layers, 2 heads, 1 kv head (kv_dim 2), vocab 3, seq 5, head not shared
        Llama2cCheckpoint c = Llama2cCheckpoint.read(write(4, 6, 2, 2, 1, -3, 5, 0));
        assertThat(c.header().sharedClassifier()).isFalse();
        assertThat(c.tensors().keySet())
                .startsWith(
                        "model.embed_tokens.weight",
                        "model.layers.0.input_layernorm.weight",
                        "model.layers.1.input_layernorm.weight",
                        "model.layers.0.self_attn.q_proj.weight")
                .endsWith("model.norm.weight", "lm_head.weight");
        // embedding 12 floats, then 2 x 4 norm floats: layer 1's norm starts at float 16
        assertThat(c.tensors().get("model.layers.1.input_layernorm.weight").toArray())
                .containsExactly(16, 17, 18, 19);
        // q: 2 x 16 from float 20; k of layer 1 (2 x 4 each) after 32 q floats and k of layer 0
        assertThat(c.tensors().get("model.layers.1.self_attn.k_proj.weight").get(0, 0))
                .isEqualTo(20 + 32 + 8);
        int total = (int) ((Llama2cCheckpoint.expectedBytes(c.header()) - 28) / 4);
        // the head is the last 12 floats, after the two unused rotary tables
        assertThat(c.tensors().get("lm_head.weight").get(2, 3)).isEqualTo(total - 1);
        assertThat(c.tensors().get("model.norm.weight").get(0, 3)).isEqualTo(total - 12 - 5 * 2 - 1);
    }

    @Test
    void writingWhatWasReadGivesTheSameBytes() throws Exception {
        Path stories = Path.of(Llama2cCheckpointTest.class
                .getResource("/stories260K/stories260K.bin")
                .toURI());
        Llama2cCheckpoint c = Llama2cCheckpoint.read(stories);
        Path copy = dir.resolve("copy.bin");
        c.write(copy);
        assertThat(Files.readAllBytes(copy)).isEqualTo(Files.readAllBytes(stories));
        // an unshared head and a layout whose every float differs from its neighbours
        Path unshared = write(4, 6, 2, 2, 1, -3, 5, 0);
        assertThat(Llama2cCheckpoint.read(unshared).toBytes()).isEqualTo(Files.readAllBytes(unshared));
    }

    @Test
    void theRotaryTablesAreExportPysCosAndSin() throws Exception {
        Llama2cCheckpoint c = Llama2cCheckpoint.read(Path.of(Llama2cCheckpointTest.class
                .getResource("/stories260K/stories260K.bin")
                .toURI()));
        FloatMatrix[] tables = Llama2cCheckpoint.ropeTables(c.header());
        assertThat(tables[0].rows()).isEqualTo(512);
        assertThat(tables[0].cols()).isEqualTo(4);
        float[] cos = c.freqsCos().toArray();
        float[] sin = c.freqsSin().toArray();
        float[] cosComputed = tables[0].toArray();
        float[] sinComputed = tables[1].toArray();
        for (int i = 0; i < cos.length; i++) {
            assertThat(cosComputed[i]).as("cos %d", i).isCloseTo(cos[i], within(2e-6f));
            assertThat(sinComputed[i]).as("sin %d", i).isCloseTo(sin[i], within(2e-6f));
        }
    }

    @Test
    void theWriterNamesAMissingMisshapenOrExtraTensor() throws Exception {
        Llama2cCheckpoint c = Llama2cCheckpoint.read(write(4, 6, 2, 2, 1, 3, 5, 0));
        Map<String, FloatMatrix> missing = new LinkedHashMap<>(c.tensors());
        missing.remove("model.layers.1.mlp.up_proj.weight");
        assertThatThrownBy(
                        () -> new Llama2cCheckpoint("m.bin", c.header(), missing, c.freqsCos(), c.freqsSin()).toBytes())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("m.bin: no tensor 'model.layers.1.mlp.up_proj.weight'");
        Map<String, FloatMatrix> misshapen = new LinkedHashMap<>(c.tensors());
        misshapen.put("model.norm.weight", FloatMatrix.zeros("model.norm.weight", 1, 5));
        assertThatThrownBy(() ->
                        new Llama2cCheckpoint("m.bin", c.header(), misshapen, c.freqsCos(), c.freqsSin()).toBytes())
                .hasMessage("m.bin: tensor 'model.norm.weight' is [1, 5], the header needs [1, 4]");
        Map<String, FloatMatrix> extra = new LinkedHashMap<>(c.tensors());
        extra.put("lm_head.weight", FloatMatrix.zeros("lm_head.weight", 3, 4));
        assertThatThrownBy(
                        () -> new Llama2cCheckpoint("m.bin", c.header(), extra, c.freqsCos(), c.freqsSin()).toBytes())
                .hasMessage("m.bin: tensors [lm_head.weight] have no place in a llama2.c checkpoint");
    }

    @Test
    void aFileOfTheWrongSizeNamesTheHeader() throws Exception {
        Path p = write(4, 6, 2, 2, 1, 3, 5, 1);
        assertThatThrownBy(() -> Llama2cCheckpoint.read(p))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageContaining("the header (dim 4, hidden_dim 6, n_layers 2, n_heads 2, n_kv_heads 1,"
                        + " vocab_size 3, seq_len 5) needs")
                .hasMessageEndingWith("the file has " + Files.size(p));
    }

    @Test
    void badHeaderFieldsAreNamed() throws Exception {
        ByteBuffer b = ByteBuffer.allocate(28).order(ByteOrder.LITTLE_ENDIAN);
        for (int v : new int[] {64, 172, 5, 8, 3, 512, 512}) {
            b.putInt(v);
        }
        Path kv = dir.resolve("kv.bin");
        Files.write(kv, b.array());
        assertThatThrownBy(() -> Llama2cCheckpoint.read(kv)).hasMessageContaining("n_kv_heads 3");
        b.putInt(8, -5);
        Files.write(kv, b.array());
        assertThatThrownBy(() -> Llama2cCheckpoint.read(kv)).hasMessage("kv.bin: header field n_layers is -5");
        b.putInt(0, 24).putInt(8, 5).putInt(16, 4);
        Files.write(kv, b.array());
        assertThatThrownBy(() -> Llama2cCheckpoint.read(kv))
                .hasMessage("kv.bin: header dim 24, n_heads 8: the head size 3 is odd, and rotary embedding rotates"
                        + " pairs");
        b.putInt(0, Llama2cCheckpoint.VERSIONED_MAGIC).putInt(4, 1);
        Files.write(kv, b.array());
        assertThatThrownBy(() -> Llama2cCheckpoint.read(kv))
                .hasMessageContaining("a llama2.c export of version 1 ('ak42' header)");
        Path shortFile = dir.resolve("short.bin");
        Files.write(shortFile, new byte[27]);
        assertThatThrownBy(() -> Llama2cCheckpoint.read(shortFile))
                .hasMessage("short.bin: 27 bytes, shorter than the 28-byte llama2.c header");
    }

    @Test
    void sizesThatOverflowAreRefusedBeforeReading() throws Exception {
        ByteBuffer b = ByteBuffer.allocate(28).order(ByteOrder.LITTLE_ENDIAN);
        for (int v : new int[] {1 << 30, 1 << 30, 1 << 30, 1, 1, 1 << 30, 1 << 30}) {
            b.putInt(v);
        }
        Path p = dir.resolve("huge.bin");
        Files.write(p, b.array());
        assertThatThrownBy(() -> Llama2cCheckpoint.read(p))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageContaining("needs more than 2^63 bytes, the file has 28");
    }
}
