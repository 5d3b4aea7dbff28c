package dev.quant4j.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.quant4j.ggml.GgmlFixtures;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Random;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/** Hostile GGUF files: each is refused with a {@link MalformedTensorFileException} naming the field at fault. */
class GgufMalformedTest {

    /** Little-endian GGUF bytes written field by field. */
    static final class Raw {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();

        Raw u8(int v) {
            out.write(v);
            return this;
        }

        Raw u32(long v) {
            for (int i = 0; i < 4; i++) {
                out.write((int) (v >> (8 * i)));
            }
            return this;
        }

        Raw u64(long v) {
            for (int i = 0; i < 8; i++) {
                out.write((int) (v >> (8 * i)));
            }
            return this;
        }

        Raw str(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            u64(b.length);
            out.writeBytes(b);
            return this;
        }

        Raw header(long nTensors, long nKv) {
            out.writeBytes("GGUF".getBytes(StandardCharsets.US_ASCII));
            return u32(3).u64(nTensors).u64(nKv);
        }

        /** A tensor info: name, ne, ggml type id, offset. */
        Raw tensor(String name, long[] ne, int type, long offset) {
            str(name).u32(ne.length);
            for (long d : ne) {
                u64(d);
            }
            return u32(type).u64(offset);
        }

        Raw zeros(int n) {
            out.writeBytes(new byte[n]);
            return this;
        }

        byte[] bytes() {
            return out.toByteArray();
        }
    }

    static byte[] raw(Consumer<Raw> body) {
        Raw r = new Raw();
        body.accept(r);
        return r.bytes();
    }

    static Stream<Arguments> hostileFiles() {
        return Stream.of(
                Arguments.of("too short", new byte[10], "too short for a GGUF header"),
                Arguments.of(
                        "bad magic", raw(r -> r.u32(0x46554746).u32(3).u64(0).u64(0)), "bad magic 0x46554746"),
                Arguments.of(
                        "version 1", raw(r -> r.u32(Gguf.MAGIC).u32(1).u64(0).u64(0)), "unsupported GGUF version 1"),
                Arguments.of(
                        "big-endian",
                        raw(r -> r.u32(Gguf.MAGIC).u32(0x03000000).u64(0).u64(0)),
                        "big-endian GGUF files are not supported"),
                Arguments.of("huge tensor count", raw(r -> r.header(1L << 40, 0)), "tensor_count 1099511627776"),
                Arguments.of("negative kv count", raw(r -> r.header(0, -1)), "metadata_kv_count 18446744073709551615"),
                Arguments.of(
                        "key length past the end",
                        raw(r -> r.header(0, 1).u64(1L << 50).zeros(8)),
                        "metadata key 0: string length 1125899906842624"),
                Arguments.of("empty key", raw(r -> r.header(0, 1).str("").u32(0).u8(0)), "metadata key 0 is empty"),
                Arguments.of(
                        "duplicate key",
                        raw(r -> r.header(0, 2)
                                .str("a")
                                .u32(0)
                                .u8(1)
                                .str("a")
                                .u32(0)
                                .u8(2)),
                        "metadata key 'a' appears twice"),
                Arguments.of(
                        "unknown value type",
                        raw(r -> r.header(0, 1).str("k").u32(13).zeros(8)),
                        "metadata 'k': unknown value type 13"),
                Arguments.of(
                        "bool byte 2",
                        raw(r -> r.header(0, 1).str("k").u32(7).u8(2).zeros(8)),
                        "metadata 'k': bool byte 2"),
                Arguments.of(
                        "array count past the end",
                        raw(r -> r.header(0, 1)
                                .str("k")
                                .u32(9)
                                .u32(4)
                                .u64(1L << 40)
                                .zeros(16)),
                        "metadata 'k': array of 1099511627776 UINT32 runs past the end"),
                Arguments.of(
                        "string array count past the end",
                        raw(r -> r.header(0, 1).str("k").u32(9).u32(8).u64(3).zeros(16)),
                        "metadata 'k'"),
                Arguments.of(
                        "string in array past the end",
                        raw(r -> r.header(0, 1)
                                .str("tok")
                                .u32(9)
                                .u32(8)
                                .u64(1)
                                .u64(1000)
                                .zeros(8)),
                        "metadata 'tok'[0]: string length 1000"),
                Arguments.of(
                        "alignment not uint32",
                        raw(r -> r.header(0, 1).str("general.alignment").u32(10).u64(32)),
                        "'general.alignment' is UINT64, must be UINT32"),
                Arguments.of(
                        "alignment not a power of two",
                        raw(r -> r.header(0, 1).str("general.alignment").u32(4).u32(48)),
                        "'general.alignment' = 48 is not a power of two"),
                Arguments.of(
                        "alignment past the largest read",
                        raw(r -> r.header(0, 1).str("general.alignment").u32(4).u32(1 << 21)),
                        "'general.alignment' = 2097152 exceeds 1048576, the largest alignment quant4j reads"),
                Arguments.of(
                        "five dimensions",
                        raw(r -> r.header(1, 0)
                                .tensor("w", new long[] {1, 1, 1, 1, 1}, 0, 0)
                                .zeros(64)),
                        "tensor 'w': n_dims 5"),
                Arguments.of(
                        "negative extent",
                        raw(r -> r.header(1, 0)
                                .tensor("w", new long[] {-4}, 0, 0)
                                .zeros(64)),
                        "tensor 'w': ne[0] = 18446744073709551612 is negative"),
                Arguments.of(
                        "overflowing shape",
                        raw(r -> r.header(1, 0)
                                .tensor("w", new long[] {1L << 32, 1L << 32}, 0, 0)
                                .zeros(64)),
                        "tensor 'w': shape ne[4294967296, 4294967296] overflows"),
                Arguments.of(
                        "overflowing byte count",
                        raw(r -> r.header(1, 0)
                                .tensor("w", new long[] {1L << 62}, 0, 0)
                                .zeros(64)),
                        "tensor 'w': shape ne[4611686018427387904] of f32 overflows"),
                Arguments.of(
                        "unknown ggml type",
                        raw(r -> r.header(1, 0)
                                .tensor("w", new long[] {32}, 4, 0)
                                .zeros(64)),
                        "tensor 'w': unknown ggml type 4"),
                Arguments.of(
                        "row not a multiple of the block",
                        raw(r -> r.header(1, 0)
                                .tensor("w", new long[] {48}, 2, 0)
                                .zeros(64)),
                        "tensor 'w': row length ne[0] = 48 is not a multiple of the q4_0 block size 32"),
                Arguments.of(
                        "misaligned offset",
                        raw(r -> r.header(1, 0)
                                .tensor("w", new long[] {4}, 0, 16)
                                .zeros(64)),
                        "tensor 'w': offset 16 is not a multiple of the alignment 32"),
                Arguments.of(
                        "offset out of range",
                        raw(r -> r.header(1, 0)
                                .tensor("w", new long[] {4}, 0, 1L << 40)
                                .zeros(64)),
                        "tensor 'w': data [1099511627776, +16) out of range"),
                Arguments.of(
                        "offset past int64",
                        raw(r -> r.header(1, 0)
                                .tensor("w", new long[] {4}, 0, -32)
                                .zeros(64)),
                        "tensor 'w': offset 18446744073709551584 is out of range"),
                Arguments.of(
                        "data past the end",
                        raw(r -> r.header(1, 0)
                                .tensor("w", new long[] {1024}, 0, 0)
                                .zeros(64)),
                        "tensor 'w': data [0, +4096) out of range of the"),
                Arguments.of(
                        "overlap",
                        raw(r -> r.header(2, 0)
                                .tensor("a", new long[] {16}, 0, 0)
                                .tensor("b", new long[] {16}, 0, 32)
                                .zeros(128 + 64)),
                        "tensors 'a' [0, 64) and 'b' [32, 96) overlap"),
                Arguments.of(
                        "duplicate tensor",
                        raw(r -> r.header(2, 0)
                                .tensor("a", new long[] {8}, 0, 0)
                                .tensor("a", new long[] {8}, 0, 32)
                                .zeros(128)),
                        "tensor name 'a' appears twice"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("hostileFiles")
    void refusesNamingTheField(String what, byte[] file, String message) {
        assertThatThrownBy(() -> Gguf.parse(file, "x.gguf"))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageStartingWith("x.gguf: ")
                .hasMessageContaining(message);
    }

    /** Every truncation of ggml's file short of the last tensor's data is refused, and nothing else is thrown. */
    @Test
    void everyTruncationIsRefused() {
        byte[] full = GgmlFixtures.bytes("ggml-written.gguf");
        int lastTensorEnd = 1312 + 1568 + 34;
        for (int n = 0; n < lastTensorEnd; n++) {
            byte[] cut = Arrays.copyOf(full, n);
            assertThatThrownBy(() -> Gguf.parse(cut, "cut"))
                    .as("length %d", n)
                    .isInstanceOf(MalformedTensorFileException.class);
        }
        assertThat(Gguf.parse(Arrays.copyOf(full, lastTensorEnd), "cut").tensors())
                .hasSize(5);
    }

    /** Seeded random corruption of ggml's file: it parses or is refused; no other exception, no huge allocation. */
    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3, 4})
    void randomCorruptionParsesOrIsRefused(long seed) {
        byte[] full = GgmlFixtures.bytes("ggml-written.gguf");
        Random rnd = new Random(seed);
        for (int trial = 0; trial < 500; trial++) {
            byte[] b = full.clone();
            int flips = 1 + rnd.nextInt(4);
            for (int f = 0; f < flips; f++) {
                int at = rnd.nextInt(1312); // the header, where the structure is
                b[at] = rnd.nextInt(3) == 0 ? (byte) 0xFF : (byte) rnd.nextInt(256);
            }
            try {
                Gguf g = Gguf.parse(b, "fuzz");
                assertThat(g.tensors().size()).isLessThanOrEqualTo(5);
            } catch (MalformedTensorFileException expected) {
                assertThat(expected.getMessage()).startsWith("fuzz: ");
            }
        }
    }
}
