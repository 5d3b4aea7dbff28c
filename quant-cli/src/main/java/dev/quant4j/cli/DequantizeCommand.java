package dev.quant4j.cli;

import dev.quant4j.io.Npy;
import dev.quant4j.io.QuantizedSafeTensors;
import dev.quant4j.io.SafeTensorsWriter;
import dev.quant4j.tensor.FloatMatrix;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(
        name = "dequantize",
        mixinStandardHelpOptions = true,
        description = "Write the float32 weights a quantized .safetensors file stands for (no flags needed).")
final class DequantizeCommand implements Callable<Integer> {

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--in", required = true, description = "quantized .safetensors written by 'quant quantize'")
    Path in;

    @Option(
            names = "--out",
            required = true,
            description = "W.npy (when the file holds one quantized tensor) or model.safetensors (all tensors)")
    Path out;

    @Override
    public Integer call() throws Exception {
        WeightFiles.requireWritable(out, "npy", "safetensors");
        WeightFiles.requireReadable(in);
        if (!WeightFiles.extension(in).equals("safetensors")) {
            throw new IllegalArgumentException("input " + in + " must be a quantized .safetensors file");
        }
        QuantizedSafeTensors.Content content = QuantizedSafeTensors.read(in);
        if (content.quantizedCount() == 0) {
            throw new IllegalArgumentException(in + ": holds no quantized tensor");
        }
        List<FloatMatrix> tensors = content.dequantizeAll();
        if (WeightFiles.extension(out).equals("npy")) {
            if (tensors.size() != 1) {
                throw new IllegalArgumentException(in + " holds " + tensors.size()
                        + " quantized tensors; write them to a .safetensors file instead of .npy");
            }
            Npy.write(out, tensors.get(0));
        } else {
            SafeTensorsWriter w = new SafeTensorsWriter();
            for (FloatMatrix m : tensors) {
                w.addF32(m.name(), new long[] {m.rows(), m.cols()}, m.toArray());
            }
            for (QuantizedSafeTensors.PassThrough p : content.other()) {
                w.add(p.name(), p.dtype(), p.shape(), p.bytes());
            }
            w.write(out);
        }
        spec.commandLine()
                .getOut()
                .printf(
                        Locale.ROOT,
                        "wrote %s (%d tensors dequantized to float32)%n",
                        out,
                        content.quantized().size());
        return Quant.OK;
    }
}
