package dev.quant4j.bench;

import dev.quant4j.io.Gguf;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Compares the tensors of two GGUF files by name, for checking quant4j's GGUF output against another program's
 * (llama.cpp's {@code llama-quantize}) in {@code scripts/measure-peer-gguf.sh}:
 *
 * <pre>
 * java -cp quant-bench/target/benchmarks.jar dev.quant4j.bench.GgufTensorsCompare A.gguf B.gguf
 * </pre>
 *
 * <p>Prints how many tensors have the same type, extents and data bytes in both, and names each one that differs or is
 * in one file only (the metadata and the order of the tensors may differ); exit code 0 when all are the same, 1 otherwise.
 */
public final class GgufTensorsCompare {

    private GgufTensorsCompare() {}

    public static void main(String[] args) throws IOException {
        if (args.length != 2) {
            System.err.println("usage: GgufTensorsCompare A.gguf B.gguf");
            System.exit(2);
        }
        int same = 0;
        int differ = 0;
        try (Gguf a = Gguf.open(Path.of(args[0]));
                Gguf b = Gguf.open(Path.of(args[1]))) {
            for (Gguf.TensorInfo t : a.tensors()) {
                if (!b.tensors().stream().anyMatch(u -> u.name().equals(t.name()))) {
                    System.out.println("only in " + args[0] + ": " + t.name());
                    differ++;
                    continue;
                }
                Gguf.TensorInfo u = b.tensor(t.name());
                String why = null;
                if (t.type() != u.type() || !Arrays.equals(t.ne(), u.ne())) {
                    why = t.type() + " ne" + Arrays.toString(t.ne()) + " vs " + u.type() + " ne"
                            + Arrays.toString(u.ne());
                } else {
                    long at = MemorySegment.mismatch(
                            a.segment(t.name()), 0, t.bytes(), b.segment(t.name()), 0, u.bytes());
                    if (at >= 0) {
                        why = "data differ from byte " + at;
                    }
                }
                if (why == null) {
                    same++;
                } else {
                    System.out.println(t.name() + ": " + why);
                    differ++;
                }
            }
            for (Gguf.TensorInfo u : b.tensors()) {
                if (!a.tensors().stream().anyMatch(t -> t.name().equals(u.name()))) {
                    System.out.println("only in " + args[1] + ": " + u.name());
                    differ++;
                }
            }
        }
        System.out.println(same + " tensors the same in both, " + differ + " not");
        System.exit(differ == 0 ? 0 : 1);
    }
}
