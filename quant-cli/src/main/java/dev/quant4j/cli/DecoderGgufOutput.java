package dev.quant4j.cli;

import dev.quant4j.ggml.GgmlType;
import dev.quant4j.model.RopeLayout;
import dev.quant4j.pipeline.GgufDecoderFile;
import dev.quant4j.pipeline.GgufDecoderFile.Stored;
import dev.quant4j.pipeline.GgufQuantizer;
import dev.quant4j.pipeline.GgufTokenizer;
import dev.quant4j.pipeline.QuantizedDecoderFile;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * {@code quant quantize --model model.bin|DIR --format gguf --gguf-type T}: a whole decoder (a llama2.c checkpoint, or
 * a Hugging Face Llama, Mistral or Qwen2 folder) as a GGUF model of llama.cpp's {@code llama} architecture, its
 * matrices in one ggml type by ggml's reference quantizers ({@link GgufDecoderFile}): one line per tensor on stdout,
 * each fallback and the vocabulary (the folder's tokenizer, {@link GgufTokenizer}, or a placeholder) on stderr.
 */
final class DecoderGgufOutput {

    private final QuantizeCommand cmd;
    private final GgufOutput.Options options;

    DecoderGgufOutput(QuantizeCommand cmd, GgufOutput.Options options) {
        this.cmd = cmd;
        this.options = options;
    }

    /** Whether {@code quant quantize --format gguf} hands its input to this class: a whole decoder. */
    static boolean handles(Path in) {
        return WeightFiles.extension(in).equals("bin")
                || (Files.isDirectory(in) && Files.isRegularFile(in.resolve("config.json")));
    }

    Integer run() throws IOException {
        String m = cmd.method.toLowerCase(Locale.ROOT);
        if (!m.equals("rtn")) {
            throw new IllegalArgumentException("--format gguf --model " + cmd.in + ": --method " + cmd.method
                    + " is not available; a whole decoder is written with ggml's reference quantizers (--method"
                    + " rtn; GPTQ into q4_0, q4_1 or q8_0 works on one matrix: --in W.npy --calib X.npy)");
        }
        for (String option : List.of(
                "--bits",
                "--group-size",
                "--asym",
                "--sym",
                "--signed",
                "--block-size",
                "--double-quant",
                "--calib",
                "--act-order",
                "--damp",
                "--static-groups",
                "--mse",
                "--include",
                "--accuracy-level",
                "--calib-sample",
                "--calib-text",
                "--calib-tokens",
                "--tokenizer",
                "--seq-len",
                "--seed",
                "--threads")) {
            if (cmd.spec.commandLine().getParseResult().hasMatchedOption(option)) {
                throw new IllegalArgumentException(option + " does not apply to --format gguf --model: the --gguf-type"
                        + " fixes the bits and the blocks of every matrix");
            }
        }
        if (options.ggufType == null) {
            throw new IllegalArgumentException("--format gguf needs --gguf-type " + GgmlType.quantizableNames());
        }
        GgmlType type = GgmlType.byName(options.ggufType);
        if (!type.quantizable()) {
            throw new IllegalArgumentException(
                    "--gguf-type " + options.ggufType + ": quant4j quantizes to " + GgmlType.quantizableNames());
        }
        WeightFiles.requireWritable(cmd.out, "gguf");
        WeightFiles.requireNotAnInput(cmd.out, cmd.overwrite, "--model", cmd.in);
        PrintWriter out = cmd.spec.commandLine().getOut();
        PrintWriter err = cmd.spec.commandLine().getErr();
        QuantizedDecoderFile.Source source = QuantizedDecoderFile.readSource(cmd.in);
        GgufTokenizer.Converted vocabulary = null;
        boolean hasTokenizer = Files.isDirectory(cmd.in) && Files.isRegularFile(cmd.in.resolve("tokenizer.json"));
        if (hasTokenizer) {
            vocabulary = GgufTokenizer.fromHuggingFace(cmd.in, source.config().vocabSize());
        }
        GgufDecoderFile.Plan plan =
                GgufDecoderFile.plan(source, type, cmd.strict, vocabulary == null ? null : vocabulary.metadata());
        int fallbacks = 0;
        for (Stored s : plan.written().tensors()) {
            StringBuilder line = new StringBuilder(
                    String.format(Locale.ROOT, "%s (%s) %s %s", s.name(), s.source(), ne(s.ne()), s.type()));
            if (s.error() != null) {
                line.append(String.format(
                        Locale.ROOT,
                        ": %.3f bits/weight, MSE %.4g, SQNR %.2f dB",
                        8.0 * s.type().rowSize(s.ne()[0]) / s.ne()[0],
                        s.error().mse(),
                        s.error().sqnrDb()));
            }
            out.println(line);
            if (s.fallback() != null) {
                fallbacks++;
                err.println("quant: '" + s.name() + "' written as " + s.type() + ", not " + type + ": " + s.fallback()
                        + " (as llama.cpp's quantize falls back)");
            }
        }
        for (String skipped : plan.written().skipped()) {
            err.println("quant: '" + skipped + "' not written: the llama architecture has no such tensor"
                    + (skipped.startsWith("freqs_") ? " (llama.cpp computes the rotary tables)" : ""));
        }
        if (vocabulary != null && vocabulary.metadata() != null) {
            err.println(
                    "quant: the vocabulary is " + cmd.in.resolve("tokenizer.json") + "'s: " + vocabulary.description());
        } else {
            err.println("quant: the vocabulary is a placeholder of "
                    + source.config().vocabSize() + " tokens (<unk>,"
                    + " <s>, </s>, 256 byte tokens, <tok_N>)"
                    + (vocabulary != null
                            ? ": tokenizer.json is not carried into GGUF, " + vocabulary.unsupported()
                            : Files.isDirectory(cmd.in)
                                    ? ": " + cmd.in + " has no tokenizer.json"
                                    : ": a llama2.c checkpoint has no tokenizer.json")
                    + "; run the model on token ids");
        }
        GgufQuantizer.Split split = options.split(cmd.maxShardSize);
        List<Path> files =
                split == null ? List.of(cmd.out) : plan.writeSplit(cmd.out, split.maxBytes(), split.maxTensors());
        if (split == null) {
            plan.write(cmd.out);
        }
        long bytes = 0;
        for (Path f : files) {
            bytes += Files.size(f);
        }
        out.printf(
                Locale.ROOT,
                "wrote %s (llama, %d tensors, matrices %s%s%s; %d bytes)%n",
                files.size() == 1
                        ? cmd.out
                        : files.size() + " splits " + files.get(0).getFileName() + " ... "
                                + files.get(files.size() - 1).getFileName(),
                plan.written().tensors().size(),
                type,
                fallbacks > 0 ? ", " + fallbacks + " of them in a fallback type" : "",
                source.config().rope() == RopeLayout.HALF_SPLIT
                        ? "; q/k rows permuted back to the interleaved rotary layout"
                        : "",
                bytes);
        return Quant.OK;
    }

    private static String ne(long[] ne) {
        StringBuilder b = new StringBuilder("[");
        for (int i = ne.length - 1; i >= 0; i--) {
            b.append(ne[i]).append(i > 0 ? " x " : "]");
        }
        return b.toString();
    }
}
