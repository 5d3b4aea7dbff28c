package dev.quant4j.cli;

import dev.quant4j.cli.eval.DecoderEval;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.model.TokenSampler;
import dev.quant4j.pipeline.DecoderQuantizer;
import dev.quant4j.pipeline.DecoderQuantizer.Method;
import dev.quant4j.pipeline.DecoderQuantizer.Setting;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.tensor.FloatMatrix;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.ForkJoinPool;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code quant generate}: continues a sequence of token ids with a decoder in FP32 and, quantized on the spot, with
 * the chosen method, and prints both continuations (one line of ids each) with how many leading tokens they share.
 */
@Command(
        name = "generate",
        mixinStandardHelpOptions = true,
        description =
                "Continue a prompt (token ids, or text with the model's tokenizer.json) with a decoder in FP32 and"
                        + " quantized, side by side.")
final class GenerateCommand implements Callable<Integer> {

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(
            names = "--model",
            required = true,
            description = "a llama2.c checkpoint (.bin), a Hugging Face Llama/Mistral/Qwen2 folder or a GGUF llama"
                    + " model (.gguf)")
    Path model;

    @Option(
            names = "--quantized",
            description = "the quantized model to run beside --model instead of quantizing it here: a GGUF llama"
                    + " model (.gguf) or a quant4j .safetensors from quant quantize --model")
    Path quantized;

    @Option(
            names = "--tokens",
            defaultValue = "1",
            description = "the prompt as token ids (default ${DEFAULT-VALUE}, BOS in Llama's vocabularies)")
    String tokens;

    @Option(
            names = "--prompt",
            description = "the prompt as text, tokenized with --tokenizer (BOS included where the tokenizer adds it);"
                    + " both continuations are printed as text too")
    String prompt;

    @Option(
            names = "--tokenizer",
            description = "the model's tokenizer.json, for --prompt and to print text (default: tokenizer.json in the"
                    + " --model folder)")
    Path tokenizer;

    @Option(names = "--max-tokens", defaultValue = "32", description = "tokens to generate (default ${DEFAULT-VALUE})")
    int steps;

    @Option(
            names = "--temperature",
            defaultValue = "0",
            description = "0 for greedy (the default), else sampling at this temperature")
    double temperature;

    @Option(names = "--greedy", description = "always the most likely token: --temperature 0, the default")
    boolean greedy;

    @Option(names = "--seed", defaultValue = "42", description = "sampling seed (default ${DEFAULT-VALUE})")
    long seed;

    @Option(
            names = "--method",
            defaultValue = "gptq",
            description = "rtn, nf4, gptq, awq or awq-block (default ${DEFAULT-VALUE}); GPTQ and AWQ calibrate on"
                    + " sequences sampled from the model")
    String method;

    @Option(names = "--bits", defaultValue = "4", description = "bits per weight (default ${DEFAULT-VALUE})")
    int bits;

    @Option(
            names = "--group-size",
            defaultValue = "32",
            description = "columns per scale, -1 per channel (default ${DEFAULT-VALUE})")
    int groupSize;

    @Option(names = "--threads", description = "threads (default: available processors)")
    Integer threads;

    @Override
    public Integer call() throws Exception {
        if (prompt != null && spec.commandLine().getParseResult().hasMatchedOption("--tokens")) {
            throw new IllegalArgumentException("--prompt and --tokens are two prompts: give one");
        }
        TextTokenizer text = null;
        if (prompt != null || tokenizer != null) {
            Path file = TextTokenizer.locate(tokenizer, model);
            if (file == null) {
                throw new IllegalArgumentException("--prompt needs the model's tokenizer: pass --tokenizer"
                        + " tokenizer.json (" + DecoderFiles.noTokenizerReason(model)
                        + "), or give the prompt as token ids with --tokens");
            }
            text = TextTokenizer.open(file);
        }
        try {
            return generate(text);
        } finally {
            if (text != null) {
                text.close();
            }
        }
    }

    private int generate(TextTokenizer text) throws java.io.IOException {
        int[] prompt = this.prompt != null ? text.encode(this.prompt) : parseTokens(tokens);
        if (prompt.length == 0) {
            throw new IllegalArgumentException("--prompt '" + this.prompt + "' gives no tokens");
        }
        if (quantized != null) {
            for (String option : List.of("--method", "--bits", "--group-size")) {
                if (spec.commandLine().getParseResult().hasMatchedOption(option)) {
                    throw new IllegalArgumentException(option + " applies when the model is quantized here, not"
                            + " with --quantized " + quantized + " (already quantized)");
                }
            }
        }
        Method m = Method.fromId(method)
                .orElseThrow(() -> new IllegalArgumentException(
                        "unknown --method '" + method + "' (expected rtn, nf4, gptq, awq or awq-block)"));
        if (steps < 1) {
            throw new IllegalArgumentException("--max-tokens must be at least 1, got " + steps);
        }
        if (greedy && temperature != 0) {
            throw new IllegalArgumentException(
                    "--greedy and --temperature " + temperature + " disagree: --greedy is" + " --temperature 0");
        }
        if (!(temperature >= 0) || Double.isInfinite(temperature)) {
            throw new IllegalArgumentException("--temperature must be 0 or positive, got " + temperature);
        }
        int nThreads = threads == null ? Runtime.getRuntime().availableProcessors() : threads;
        if (nThreads < 1) {
            throw new IllegalArgumentException("--threads must be at least 1, got " + nThreads);
        }
        ForkJoinPool pool = new ForkJoinPool(nThreads);
        try {
            PrintWriter err = spec.commandLine().getErr();
            LlamaDecoder fp32 = DecoderFiles.readModel(model, pool, err, "quant");
            String modelName = model.getFileName() == null
                    ? model.toString()
                    : model.getFileName().toString();
            DecoderEval.Candidate file =
                    quantized == null ? null : DecoderFiles.readQuantized(quantized, fp32, modelName, pool);
            int total = prompt.length + steps;
            for (LlamaDecoder d : file == null ? List.of(fp32) : List.of(fp32, file.model())) {
                if (total > d.config().maxSeqLen()) {
                    throw new IllegalArgumentException(prompt.length + " prompt tokens and --max-tokens " + steps
                            + " exceed the " + d.config().maxSeqLen() + " positions of " + d.source());
                }
            }
            if (text != null) {
                String note = text.requireFits(
                        fp32.config().vocabSize(), model.getFileName().toString());
                if (note != null) {
                    spec.commandLine().getErr().println("quant: " + note);
                }
            }
            for (int t : prompt) {
                if (t < 0 || t >= fp32.config().vocabSize()) {
                    throw new IllegalArgumentException("--tokens: id " + t + " is outside the vocabulary of "
                            + fp32.config().vocabSize());
                }
            }
            String label;
            LlamaDecoder second;
            if (file != null) {
                label = file.row().label();
                second = file.model();
            } else {
                Setting setting = new Setting(
                        m, bits, groupSize == -1 ? LinearScheme.PER_CHANNEL : groupSize, false, m == Method.GPTQ);
                List<int[]> calibration = m == Method.GPTQ || m == Method.AWQ || m == Method.AWQ_BLOCK
                        ? TokenSampler.sample(
                                fp32, 32, Math.min(128, fp32.config().maxSeqLen()), prompt[0], 1.0, 1)
                        : null;
                label = setting.label();
                second = new DecoderQuantizer(setting, pool)
                        .quantize(fp32, calibration, null)
                        .model();
            }
            int[] a = continueTokens(fp32, prompt, steps);
            int[] b = continueTokens(second, prompt, steps);
            int shared = 0;
            while (shared < steps && a[shared] == b[shared]) {
                shared++;
            }
            PrintWriter out = spec.commandLine().getOut();
            if (text != null) {
                out.println("prompt: " + ids(prompt));
            }
            out.println("FP32:  " + ids(a));
            out.println(String.format(Locale.ROOT, "%-6s %s", label + ":", ids(b)));
            if (text != null) {
                out.println("FP32 text:  " + quoted(text.decode(concat(prompt, a))));
                out.println(label + " text: " + quoted(text.decode(concat(prompt, b))));
            }
            out.println(String.format(Locale.ROOT, "the first %d of %d generated tokens agree", shared, steps));
            out.flush();
            return 0;
        } finally {
            pool.shutdown();
        }
    }

    /** {@code steps} tokens after {@code prompt}, greedy or sampled with this command's seed. */
    private int[] continueTokens(LlamaDecoder model, int[] prompt, int steps) {
        LlamaDecoder.KvCache cache = model.newCache(prompt.length + steps);
        FloatMatrix logits = model.forward(prompt, cache, null);
        int lastRow = logits.rowOffset(prompt.length - 1);
        float[] last = Arrays.copyOfRange(logits.array(), lastRow, lastRow + logits.cols());
        SplittableRandom random = new SplittableRandom(seed);
        int[] out = new int[steps];
        for (int s = 0; s < steps; s++) {
            out[s] = temperature == 0 ? argmax(last) : TokenSampler.draw(last, temperature, random.nextDouble());
            if (s + 1 < steps) {
                last = model.forward(new int[] {out[s]}, cache, null).toArray();
            }
        }
        return out;
    }

    private static int argmax(float[] x) {
        int best = 0;
        for (int i = 1; i < x.length; i++) {
            if (x[i] > x[best]) {
                best = i;
            }
        }
        return best;
    }

    static int[] parseTokens(String text) {
        List<Integer> ids = new ArrayList<>();
        for (String part : text.trim().split("[\\s,]+")) {
            if (part.isEmpty()) {
                continue;
            }
            try {
                ids.add(Integer.parseInt(part));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--tokens: '" + part + "' is not a token id");
            }
        }
        if (ids.isEmpty()) {
            throw new IllegalArgumentException("--tokens: no token ids");
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    private static int[] concat(int[] a, int[] b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    /** The text in double quotes, its line breaks and tabs escaped so that each model's text stays on one line. */
    private static String quoted(String s) {
        return '"'
                + s.replace("\\", "\\\\")
                        .replace("\n", "\\n")
                        .replace("\r", "\\r")
                        .replace("\t", "\\t")
                + '"';
    }

    private static String ids(int[] a) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < a.length; i++) {
            b.append(i == 0 ? "" : " ").append(a[i]);
        }
        return b.toString();
    }
}
