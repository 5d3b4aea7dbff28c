package dev.quant4j.cli;

import dev.quant4j.io.DType;
import dev.quant4j.io.GptqCheckpoint;
import dev.quant4j.io.Npy;
import dev.quant4j.io.QuantizedSafeTensors;
import dev.quant4j.io.SafeTensors;
import dev.quant4j.io.SafeTensorsCheckpoint;
import dev.quant4j.io.SafeTensorsWriter;
import dev.quant4j.pipeline.CheckpointDequantizer;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.HalfFloats;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
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
        description = "Write the weights a quantized .safetensors file or GPTQ checkpoint folder stands for, under"
                + " their names and in the layout of the file they came from (ONNX MatMul weights [in, out]); other"
                + " tensors pass through. From a .gguf file: every tensor in a ggml block type, shape row-major (ne[]"
                + " reversed).")
final class DequantizeCommand implements Callable<Integer> {

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(
            names = "--in",
            required = true,
            description = "quantized .safetensors written by 'quant quantize', a GPTQ checkpoint folder"
                    + " (AutoGPTQ/GPTQModel layout: quantize_config.json and a .safetensors file), or a .gguf file")
    Path in;

    @Option(
            names = "--out",
            required = true,
            description = "W.npy (when the file holds one quantized tensor; float32 only), model.safetensors, or"
                    + " model.bin (a llama2.c checkpoint, from a whole decoder quantized from one)")
    Path out;

    @Option(
            names = "--dtype",
            defaultValue = "f32",
            description = "element type of the dequantized tensors in a .safetensors output: f32, f16 or bf16"
                    + " (rounded to nearest even; default ${DEFAULT-VALUE})")
    String dtype;

    @Option(
            names = "--overwrite",
            description = "replace an existing --out output folder (sharded), or allow --out to be the --in file;"
                    + " replaced atomically when done")
    boolean overwrite;

    @Option(names = "--threads", description = "threads (default: every core); the output does not depend on it")
    Integer threads;

    @Override
    public Integer call() throws Exception {
        if (WeightFiles.extension(out).equals("bin")) {
            return DecoderDequantize.run(
                    in, out, dtype, overwrite, spec.commandLine().getOut());
        }
        if (threads != null && threads < 1) {
            throw new IllegalArgumentException("--threads " + threads + " must be at least 1");
        }
        boolean quant4jFolder = (Files.isDirectory(in) && !Files.exists(in.resolve(GptqCheckpoint.QUANTIZE_CONFIG)))
                || (WeightFiles.extension(in).equals("json") && Files.isRegularFile(in));
        if (quant4jFolder
                || (WeightFiles.extension(in).equals("safetensors")
                        && WeightFiles.extension(out).equals("safetensors")
                        && Files.isRegularFile(in)
                        && !isGptqFile(in))) {
            return streamed();
        }
        WeightFiles.requireWritable(out, "npy", "safetensors");
        boolean gptqFolder = Files.isDirectory(in);
        if (!gptqFolder) {
            WeightFiles.requireReadable(in);
        }
        WeightFiles.requireNotAnInput(out, overwrite, "--in", in);
        DType type = dtype();
        boolean npy = WeightFiles.extension(out).equals("npy");
        if (npy && type != DType.F32) {
            throw new IllegalArgumentException(
                    "--dtype " + dtype + ": a .npy output is float32; write a" + " .safetensors file for f16 or bf16");
        }
        if (WeightFiles.extension(in).equals("gguf")) {
            return GgufInput.dequantize(in, out, type, spec.commandLine().getOut());
        }
        if (!gptqFolder && !WeightFiles.extension(in).equals("safetensors")) {
            throw new IllegalArgumentException(
                    "input " + in + " must be a quantized .safetensors file, a GPTQ checkpoint folder or a .gguf file");
        }
        QuantizedSafeTensors.Content content =
                gptqFolder || isGptqFile(in) ? GptqCheckpoint.read(in).content() : QuantizedSafeTensors.read(in);
        if (content.weights().isEmpty()) {
            throw new IllegalArgumentException(in + ": holds no quantized tensor");
        }
        List<FloatMatrix> tensors = content.dequantizeAll();
        if (npy) {
            if (tensors.size() != 1) {
                throw new IllegalArgumentException(in + " holds " + tensors.size()
                        + " quantized tensors; write them to a .safetensors file instead of .npy");
            }
            Npy.write(out, tensors.get(0));
        } else {
            SafeTensorsWriter w = new SafeTensorsWriter();
            for (FloatMatrix m : tensors) {
                w.add(m.name(), type, new long[] {m.rows(), m.cols()}, encode(m.toArray(), type));
            }
            for (QuantizedSafeTensors.PassThrough p : content.other()) {
                w.add(p.name(), p.dtype(), p.shape(), p.bytes());
            }
            w.write(out);
        }
        printWrote(
                tensors.size(),
                npy ? "float32" : type.name(),
                npy ? 0 : content.other().size());
        return Quant.OK;
    }

    /**
     * A quant4j checkpoint (one {@code .safetensors} file, or a folder of shards) to plain safetensors of the same
     * shape, streamed ({@link CheckpointDequantizer}).
     */
    private int streamed() throws java.io.IOException {
        DType type = dtype();
        try (SafeTensorsCheckpoint c = SafeTensorsCheckpoint.open(in)) {
            if (c.folder() != null) {
                if (WeightFiles.extension(out).equals("safetensors")
                        || WeightFiles.extension(out).equals("npy")) {
                    throw new IllegalArgumentException("--in " + in + " is a folder of shards, so --out is a folder"
                            + " too (the same shard names), not " + out);
                }
                if (Files.exists(out) && !overwrite) {
                    throw new IllegalArgumentException(
                            "--out " + out + " exists; choose a new folder (or pass --overwrite to replace it)");
                }
                if (out.toAbsolutePath().startsWith(c.folder().toAbsolutePath())) {
                    throw new IllegalArgumentException("--out " + out + " is inside the input folder " + c.folder());
                }
            } else {
                WeightFiles.requireWritable(out, "safetensors");
                WeightFiles.requireNotAnInput(out, overwrite, "--in", in);
            }
            int n = threads == null ? Runtime.getRuntime().availableProcessors() : threads;
            ProgressLine progress =
                    new ProgressLine(spec.commandLine().getErr(), c.dataBytes(), System.console() != null);
            java.util.concurrent.ForkJoinPool pool = new java.util.concurrent.ForkJoinPool(n);
            CheckpointDequantizer.Summary s;
            try {
                s = new CheckpointDequantizer(type, pool).dequantize(c, out, overwrite, progress);
            } catch (dev.quant4j.io.MalformedTensorFileException e) {
                throw new IllegalArgumentException(
                        e.getMessage().contains("not a quant4j quantized file")
                                ? e.getMessage() + "; 'quant dequantize' reads files 'quant quantize' wrote"
                                : e.getMessage());
            } finally {
                pool.shutdown();
                progress.finish();
            }
            if (s.weights() == 0) {
                throw new IllegalArgumentException(in + ": holds no quantized tensor");
            }
            printWrote(s.weights(), type.name(), s.copied());
        }
        return Quant.OK;
    }

    private void printWrote(int weights, String type, int unchanged) {
        spec.commandLine()
                .getOut()
                .printf(
                        Locale.ROOT,
                        "wrote %s (%d %s dequantized to %s, %d unchanged)%n",
                        out,
                        weights,
                        weights == 1 ? "tensor" : "tensors",
                        type,
                        unchanged);
    }

    private DType dtype() {
        return switch (dtype.toLowerCase(Locale.ROOT)) {
            case "f32" -> DType.F32;
            case "f16" -> DType.F16;
            case "bf16" -> DType.BF16;
            default -> throw new IllegalArgumentException("--dtype '" + dtype + "': expected f32, f16 or bf16");
        };
    }

    /** A .safetensors file without quant4j's metadata, beside a quantize_config.json: one of a GPTQ checkpoint. */
    private static boolean isGptqFile(Path in) throws java.io.IOException {
        Path dir = in.toAbsolutePath().getParent();
        if (dir == null || !Files.isRegularFile(dir.resolve(GptqCheckpoint.QUANTIZE_CONFIG))) {
            return false;
        }
        try (SafeTensors st = SafeTensors.open(in)) {
            return !st.metadata().containsKey(QuantizedSafeTensors.FORMAT_KEY);
        }
    }

    /** Little-endian bytes of {@code v} as {@code type}; F16 and BF16 round to nearest even. */
    static byte[] encode(float[] v, DType type) {
        ByteBuffer b = ByteBuffer.allocate(type.bytes() * v.length).order(ByteOrder.LITTLE_ENDIAN);
        switch (type) {
            case F32 -> b.asFloatBuffer().put(v);
            case F16 -> {
                for (float f : v) {
                    b.putShort(HalfFloats.floatToFp16(f));
                }
            }
            case BF16 -> {
                for (float f : v) {
                    b.putShort(HalfFloats.floatToBf16(f));
                }
            }
            default -> throw new IllegalArgumentException("cannot encode floats as " + type);
        }
        return b.array();
    }
}
