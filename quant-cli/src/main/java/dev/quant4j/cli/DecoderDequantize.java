package dev.quant4j.cli;

import dev.quant4j.io.Llama2cCheckpoint;
import dev.quant4j.pipeline.QuantizedDecoderFile;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * {@code quant dequantize --out model.bin}: a whole decoder that {@code quant quantize --model model.bin} wrote, back
 * as a llama2.c checkpoint ({@link Llama2cCheckpoint}) holding the weights the quantized ones stand for, every other
 * tensor as it was in the original file, so that llama2.c's {@code run.c} runs the quantized model.
 */
final class DecoderDequantize {

    private DecoderDequantize() {}

    static int run(Path in, Path out, String dtype, boolean overwrite, PrintWriter pw) throws IOException {
        WeightFiles.requireWritable(out, "bin");
        WeightFiles.requireReadable(in);
        WeightFiles.requireNotAnInput(out, overwrite, "--in", in);
        if (!dtype.equalsIgnoreCase("f32")) {
            throw new IllegalArgumentException("--dtype " + dtype + ": a llama2.c checkpoint is float32");
        }
        if (!WeightFiles.extension(in).equals("safetensors")) {
            throw new IllegalArgumentException("--out " + out + " is a llama2.c checkpoint, written from a whole"
                    + " decoder that quant quantize --model model.bin wrote; --in " + in + " is not a .safetensors"
                    + " file");
        }
        QuantizedDecoderFile.Loaded loaded = QuantizedDecoderFile.read(in);
        Llama2cCheckpoint checkpoint = loaded.toLlama2c(out.getFileName().toString());
        checkpoint.write(out);
        pw.printf(
                Locale.ROOT,
                "wrote %s (llama2.c checkpoint: %d weights dequantized to float32, %d unchanged; %d bytes)%n",
                out,
                loaded.content().weights().size(),
                checkpoint.tensors().size() - loaded.content().weights().size(),
                Files.size(out));
        return Quant.OK;
    }
}
