package dev.quant4j.cli;

import static dev.quant4j.cli.QuantizeDecoderTest.expectError;
import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.cli.eval.DecoderEval;
import dev.quant4j.io.Llama2cCheckpoint;
import dev.quant4j.io.SafeTensorsWriter;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.pipeline.DecoderQuantizer;
import dev.quant4j.pipeline.DecoderQuantizer.Method;
import dev.quant4j.pipeline.DecoderQuantizer.Setting;
import dev.quant4j.pipeline.QuantizedDecoderFile;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.tensor.FloatMatrix;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ForkJoinPool;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Calibration and evaluation on the user's text ({@code --calib-text}, {@code --eval-text}, {@code quant generate
 * --prompt}) with a Hugging Face folder's {@code tokenizer.json}, and on token ids ({@code --calib-tokens}): a
 * synthetic folder (stories260K's blocks, its embedding table cut to the 32 rows of a hand-made WordLevel tokenizer).
 * The ids are computed here by hand (lower-case, split at spaces, look up), independently of the tokenizers library;
 * the packing into windows too.
 */
class TextCalibrationTest {

    static final ForkJoinPool POOL = new ForkJoinPool(2);

    /** Ids 3.. of the WordLevel vocabulary; 0, 1, 2 are {@code <unk>}, {@code <s>}, {@code </s>}. */
    static final List<String> WORDS = List.of(
            "the", "a", "cat", "dog", "sat", "ran", "on", "mat", "in", "park", "big", "small", "red", "blue", "saw",
            "bird", "tree", "and", "then", "it", "was", "happy", "sad", "day", "sun", "home", "to", "went", ".");

    static final int VOCAB = 3 + WORDS.size();

    @TempDir
    Path dir;

    @AfterAll
    static void stop() {
        POOL.shutdown();
    }

    /** A WordLevel tokenizer.json of the specials and the first {@code words} of {@link #WORDS}: BOS prepended. */
    static String tokenizerJson(int words) {
        StringBuilder vocab = new StringBuilder("\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2");
        for (int i = 0; i < words; i++) {
            vocab.append(", \"").append(WORDS.get(i)).append("\": ").append(3 + i);
        }
        String special = "\"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false,"
                + " \"special\": true";
        return """
                {"version": "1.0", "truncation": null, "padding": null,
                 "added_tokens": [{"id": 0, "content": "<unk>", %1$s}, {"id": 1, "content": "<s>", %1$s},
                                  {"id": 2, "content": "</s>", %1$s}],
                 "normalizer": {"type": "Lowercase"},
                 "pre_tokenizer": {"type": "Whitespace"},
                 "post_processor": {"type": "TemplateProcessing",
                   "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                   "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                            {"Sequence": {"id": "B", "type_id": 1}}],
                   "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
                 "decoder": null,
                 "model": {"type": "WordLevel", "vocab": {%2$s}, "unk_token": "<unk>"}}
                """.formatted(special, vocab);
    }

    /**
     * A Hugging Face Llama folder of {@code vocab} tokens: stories260K's tensors (llama2.c's q/k rows: another model
     * of the same shapes), its tied embedding table cut to the first {@code vocab} rows; with {@code tokenizer} as
     * its tokenizer.json unless null.
     */
    Path folder(String name, int vocab, String tokenizer) throws Exception {
        return folder(dir, name, vocab, tokenizer);
    }

    static Path folder(Path dir, String name, int vocab, String tokenizer) throws Exception {
        Path hf = Files.createDirectories(dir.resolve(name));
        Files.writeString(hf.resolve("config.json"), """
                {"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 172,
                 "num_hidden_layers": 5, "num_attention_heads": 8, "num_key_value_heads": 4, "vocab_size": %d,
                 "max_position_embeddings": 512, "rms_norm_eps": 1e-05, "hidden_act": "silu",
                 "tie_word_embeddings": true}
                """.formatted(vocab));
        if (tokenizer != null) {
            Files.writeString(hf.resolve("tokenizer.json"), tokenizer);
        }
        SafeTensorsWriter w = new SafeTensorsWriter();
        for (Map.Entry<String, FloatMatrix> e :
                Llama2cCheckpoint.read(QuantizeDecoderTest.STORIES).tensors().entrySet()) {
            FloatMatrix m = e.getValue();
            if (e.getKey().equals("model.embed_tokens.weight")) {
                w.addF32(e.getKey(), new long[] {vocab, m.cols()}, Arrays.copyOf(m.toArray(), vocab * m.cols()));
            } else {
                w.addF32(
                        e.getKey(),
                        m.rows() == 1 ? new long[] {m.cols()} : new long[] {m.rows(), m.cols()},
                        m.toArray());
            }
        }
        w.write(hf.resolve("model.safetensors"));
        return hf;
    }

    /** {@code lines} sentences of the words, capitalized and ending with " .", from {@code seed}. */
    static List<String> sentences(int lines, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        List<String> out = new ArrayList<>();
        for (int i = 0; i < lines; i++) {
            int n = 3 + r.nextInt(10);
            StringBuilder b = new StringBuilder();
            for (int j = 0; j < n; j++) {
                String word = WORDS.get(r.nextInt(WORDS.size() - 1));
                b.append(j == 0 ? "" : " ")
                        .append(j == 0 ? Character.toUpperCase(word.charAt(0)) + word.substring(1) : word);
            }
            out.add(b.append(" .").toString());
        }
        return out;
    }

    /** The ids the tokenizer gives a sentence: BOS, then each lower-cased word's id. */
    static int[] ids(String sentence) {
        String[] words = sentence.toLowerCase(Locale.ROOT).split(" ");
        int[] ids = new int[words.length + 1];
        ids[0] = 1;
        for (int i = 0; i < words.length; i++) {
            ids[i + 1] = 3 + WORDS.indexOf(words[i]);
        }
        return ids;
    }

    /** The sentences' ids concatenated and cut into every whole window of {@code len}. */
    static List<int[]> windows(List<String> sentences, int len) {
        int[] stream = sentences.stream()
                .map(TextCalibrationTest::ids)
                .flatMapToInt(Arrays::stream)
                .toArray();
        List<int[]> out = new ArrayList<>();
        for (int from = 0; from + len <= stream.length; from += len) {
            out.add(Arrays.copyOfRange(stream, from, from + len));
        }
        return out;
    }

    static String idLine(int[] ids) {
        return Arrays.stream(ids).mapToObj(Integer::toString).collect(Collectors.joining(" "));
    }

    @Test
    void textAndItsIdsGiveTheSameFileAsTheApiOnTheWindows() throws Exception {
        Path hf = folder("hf", VOCAB, tokenizerJson(WORDS.size()));
        List<String> text = sentences(40, 1);
        Path calib = dir.resolve("calib.txt");
        // a blank line and Windows line ends are left out
        Files.writeString(
                calib,
                String.join("\r\n", text.subList(0, 20)) + "\n\n" + String.join("\n", text.subList(20, 40)) + "\n");
        Path tokens = dir.resolve("calib-ids.txt");
        Files.writeString(tokens, text.stream().map(s -> idLine(ids(s))).collect(Collectors.joining("\n", "", "\n")));
        List<int[]> windows = windows(text, 16);
        long total = text.stream().mapToLong(s -> ids(s).length).sum();
        assertThat(windows.size()).isGreaterThan(8);

        Path fromText = dir.resolve("text.safetensors");
        QuantCliTest.Result r = QuantCliTest.run(
                "quantize",
                "--model",
                hf.toString(),
                "--method",
                "gptq",
                "--group-size",
                "32",
                "--calib-text",
                calib.toString(),
                "--seq-len",
                "16",
                "--out",
                fromText.toString(),
                "--threads",
                "2");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err())
                .contains("quant: hf, 5 layers, dim 64: GPTQ int4 g32; calibrating on " + windows.size()
                        + " sequences of 16 tokens from calib.txt (40 lines of text, " + total + " tokens by "
                        + hf.resolve("tokenizer.json"));
        Path fromIds = dir.resolve("ids.safetensors");
        r = QuantCliTest.run(
                "quantize",
                "--model",
                hf.toString(),
                "--method",
                "gptq",
                "--group-size",
                "32",
                "--calib-tokens",
                tokens.toString(),
                "--seq-len",
                "16",
                "--out",
                fromIds.toString(),
                "--threads",
                "1");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err())
                .contains("calibrating on " + windows.size() + " sequences of 16 tokens from calib-ids.txt (40 lines"
                        + " of ids, " + total + " tokens");
        assertThat(Files.readAllBytes(fromIds)).isEqualTo(Files.readAllBytes(fromText));

        // the windows cut here, through the API
        DecoderQuantizer.Result api = new DecoderQuantizer(new Setting(Method.GPTQ, 4, 32, false, false), POOL)
                .quantize(LlamaDecoder.read(hf, POOL), windows, null);
        Map<String, QuantizedWeight> written =
                QuantizedDecoderFile.read(fromText).content().weights();
        assertThat(written).hasSize(35);
        for (QuantizedWeight q : written.values()) {
            assertThat(q.dequantize().toArray())
                    .as(q.name())
                    .containsExactly(api.weights().get(q.name()).dequantize().toArray());
        }

        // --calib-sample N: the first N windows
        Path first4 = dir.resolve("first4.safetensors");
        r = QuantCliTest.run(
                "quantize",
                "--model",
                hf.toString(),
                "--method",
                "awq-block",
                "--group-size",
                "32",
                "--calib-tokens",
                tokens.toString(),
                "--calib-sample",
                "4",
                "--seq-len",
                "16",
                "--out",
                first4.toString(),
                "--threads",
                "2");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err()).contains("calibrating on 4 sequences of 16 tokens from calib-ids.txt");
        DecoderQuantizer.Result awq = new DecoderQuantizer(new Setting(Method.AWQ_BLOCK, 4, 32, false, false), POOL)
                .quantize(LlamaDecoder.read(hf, POOL), windows.subList(0, 4), null);
        for (QuantizedWeight q :
                QuantizedDecoderFile.read(first4).content().weights().values()) {
            assertThat(q.dequantize().toArray())
                    .as(q.name())
                    .containsExactly(awq.weights().get(q.name()).dequantize().toArray());
        }
    }

    @Test
    void evalOnTextComparesOnTheHeldOutWindows() throws Exception {
        Path hf = folder("hf", VOCAB, tokenizerJson(WORDS.size()));
        List<String> calibText = sentences(30, 2);
        List<String> evalText = sentences(12, 3);
        Path calib = dir.resolve("calib.txt");
        Path held = dir.resolve("held-out.txt");
        Files.write(calib, calibText);
        Files.write(held, evalText);
        Path out = dir.resolve("eval");
        QuantCliTest.Result r = QuantCliTest.run(
                "eval",
                "--model",
                hf.toString(),
                "--calib-text",
                calib.toString(),
                "--eval-text",
                held.toString(),
                "--seq-len",
                "24",
                "--settings",
                "RTN int8|GPTQ int4 g32$",
                "--out",
                out.toString(),
                "--threads",
                "2");
        assertThat(r.code()).as(r.err()).isZero();
        List<int[]> calibration = windows(calibText, 24);
        List<int[]> evaluation = windows(evalText, 24);
        assertThat(r.err())
                .contains("calibration: " + calibration.size() + " sequences of 24 tokens from calib.txt (30 lines of"
                        + " text")
                .contains("evaluation: " + evaluation.size() + " sequences of 24 tokens from held-out.txt (12 lines"
                        + " of text")
                .doesNotContain("not held out");
        LlamaDecoder fp32 = LlamaDecoder.read(hf, POOL);
        List<Setting> settings =
                List.of(new Setting(Method.RTN, 8, -1, false, false), new Setting(Method.GPTQ, 4, 32, false, false));
        List<DecoderEval.Row> rows = DecoderEval.run(fp32, settings, calibration, evaluation, POOL, label -> {});
        assertThat(Files.readString(out.resolve("eval.json"))).isEqualTo(DecoderEval.json(rows));
        assertThat(r.out()).isEqualTo(DecoderEval.markdown(rows));

        // ids for evaluation, the held-out windows counted; sampled calibration as before
        Path heldIds = dir.resolve("held-out-ids.txt");
        Files.writeString(heldIds, evalText.stream().map(s -> idLine(ids(s))).collect(Collectors.joining("\n")));
        r = QuantCliTest.run(
                "eval",
                "--model",
                hf.toString(),
                "--calib-sample",
                "2",
                "--eval-tokens",
                heldIds.toString(),
                "--eval-sample",
                "2",
                "--seq-len",
                "24",
                "--settings",
                "RTN int8",
                "--out",
                out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err())
                .contains("calibration: 2 sequences of 24 tokens sampled with seed 1; evaluation: 2 sequences of 24"
                        + " tokens from held-out-ids.txt");
    }

    @Test
    void generateTakesAPromptAndPrintsText() throws Exception {
        Path hf = folder("hf", VOCAB, tokenizerJson(WORDS.size()));
        QuantCliTest.Result r = QuantCliTest.run(
                "generate",
                "--model",
                hf.toString(),
                "--prompt",
                "The cat sat",
                "--max-tokens",
                "10",
                "--method",
                "rtn",
                "--bits",
                "8",
                "--group-size",
                "-1");
        assertThat(r.code()).as(r.err()).isZero();
        List<String> lines = r.out().lines().toList();
        assertThat(lines).hasSize(6);
        assertThat(lines.get(0)).isEqualTo("prompt: 1 3 5 7");
        // greedy continuation through the API
        LlamaDecoder fp32 = LlamaDecoder.read(hf, POOL);
        int[] seq = {1, 3, 5, 7};
        List<Integer> generated = new ArrayList<>();
        for (int s = 0; s < 10; s++) {
            FloatMatrix logits = fp32.logits(seq);
            int best = 0;
            int row = logits.rowOffset(seq.length - 1);
            for (int v = 1; v < VOCAB; v++) {
                if (logits.array()[row + v] > logits.array()[row + best]) {
                    best = v;
                }
            }
            generated.add(best);
            seq = Arrays.copyOf(seq, seq.length + 1);
            seq[seq.length - 1] = best;
        }
        assertThat(lines.get(1))
                .isEqualTo("FP32:  " + generated.stream().map(String::valueOf).collect(Collectors.joining(" ")));
        assertThat(lines.get(2)).startsWith("RTN int8 per channel: ");
        // WordLevel has no decoder: the tokens joined by spaces, the special ones left out
        List<String> words = new ArrayList<>(List.of("the", "cat", "sat"));
        generated.stream().filter(id -> id > 2).forEach(id -> words.add(WORDS.get(id - 3)));
        assertThat(lines.get(3)).isEqualTo("FP32 text:  \"" + String.join(" ", words) + "\"");
        assertThat(lines.get(4)).startsWith("RTN int8 per channel text: \"the cat sat ");
        assertThat(lines.get(5)).matches("the first ([0-9]|10) of 10 generated tokens agree");
    }

    @Test
    void badInputIsNamedBeforeAnyWork() throws Exception {
        Path hf = folder("hf", VOCAB, tokenizerJson(WORDS.size()));
        Path out = dir.resolve("q.safetensors");
        Path text = dir.resolve("text.txt");
        Files.write(text, sentences(10, 4));
        String bin = QuantizeDecoderTest.STORIES.toString();

        Path noTokenizer = folder("bare", VOCAB, null);
        expectError(
                "--calib-text needs the model's tokenizer: pass --tokenizer tokenizer.json (" + noTokenizer
                        + " holds no tokenizer.json), or give token ids with --calib-tokens FILE, or let the model"
                        + " sample its own sequences with --calib-sample N",
                "quantize",
                "--model",
                noTokenizer.toString(),
                "--method",
                "gptq",
                "--calib-text",
                text.toString(),
                "--out",
                out.toString());
        expectError(
                "--calib-text needs the model's tokenizer: pass --tokenizer tokenizer.json (" + bin
                        + " is not a Hugging Face folder)",
                "quantize",
                "--model",
                bin,
                "--method",
                "gptq",
                "--calib-text",
                text.toString(),
                "--out",
                out.toString());
        expectError(
                "--eval-text needs the model's tokenizer",
                "eval",
                "--model",
                noTokenizer.toString(),
                "--eval-text",
                text.toString(),
                "--out",
                dir.toString());
        expectError(
                "--prompt needs the model's tokenizer: pass --tokenizer tokenizer.json (" + bin
                        + " is not a Hugging Face folder), or give the prompt as token ids with --tokens",
                "generate",
                "--model",
                bin,
                "--prompt",
                "the cat");

        // a tokenizer with ids beyond the model's embedding rows; a padded table is legal
        Path small = folder("small", VOCAB - 2, tokenizerJson(WORDS.size()));
        expectError(
                small.resolve("tokenizer.json") + " gives ids up to 31 (32 tokens), and small has a vocabulary of 30:"
                        + " not this model's tokenizer",
                "quantize",
                "--model",
                small.toString(),
                "--method",
                "gptq",
                "--calib-text",
                text.toString(),
                "--seq-len",
                "8",
                "--out",
                out.toString());
        Path padded = folder("padded", VOCAB + 8, tokenizerJson(WORDS.size()));
        QuantCliTest.Result r = QuantCliTest.run(
                "generate", "--model", padded.toString(), "--prompt", "a dog", "--max-tokens", "2", "--method", "rtn");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err())
                .contains("quant: " + padded.resolve("tokenizer.json") + " has 32 tokens, padded 40 embedding rows (a"
                        + " padded table: the last 8 are never used)");

        // token files
        Path ids = dir.resolve("ids.txt");
        Files.writeString(ids, "1 3 4 5\n\n1 6 7 x9 8\n");
        expectError(
                "--calib-tokens " + ids + " line 3: 'x9' is not a token id (a line holds integers separated by white"
                        + " space)",
                "quantize",
                "--model",
                hf.toString(),
                "--method",
                "gptq",
                "--calib-tokens",
                ids.toString(),
                "--out",
                out.toString());
        Files.writeString(ids, "1 3 4 5\n1 6 7 32 8\n");
        expectError(
                "--calib-tokens " + ids + " line 2: token id 32 is outside the vocabulary of hf (ids 0..31)",
                "quantize",
                "--model",
                hf.toString(),
                "--method",
                "awq",
                "--calib-tokens",
                ids.toString(),
                "--seq-len",
                "4",
                "--out",
                out.toString());
        Files.writeString(ids, "1 3 -4 5\n");
        expectError(
                "--eval-tokens " + ids + " line 1: token id -4 is negative",
                "eval",
                "--model",
                hf.toString(),
                "--eval-tokens",
                ids.toString(),
                "--out",
                dir.toString());
        Files.writeString(ids, "\n  \n");
        expectError(
                "--calib-tokens " + ids + " holds no token ids (every line is blank)",
                "quantize",
                "--model",
                bin,
                "--method",
                "gptq",
                "--calib-tokens",
                ids.toString(),
                "--out",
                out.toString());
        Path empty = dir.resolve("empty.txt");
        Files.writeString(empty, "");
        expectError(
                "--calib-text " + empty + " holds no text (every line is blank)",
                "quantize",
                "--model",
                hf.toString(),
                "--method",
                "gptq",
                "--calib-text",
                empty.toString(),
                "--out",
                out.toString());
        Files.write(empty, new byte[] {'t', 'h', 'e', '\n', 'c', 'a', (byte) 0xC3, 't'});
        expectError(
                "--calib-text " + empty + " line 2: not UTF-8 text (byte offset 6)",
                "quantize",
                "--model",
                hf.toString(),
                "--method",
                "gptq",
                "--calib-text",
                empty.toString(),
                "--out",
                out.toString());
        Files.writeString(ids, "1 3 4 5\n1 6 7\n");
        expectError(
                "--calib-tokens " + ids + " holds 7 tokens; one sequence of --seq-len 8 needs 8: give more text or a"
                        + " lower --seq-len",
                "quantize",
                "--model",
                bin,
                "--method",
                "gptq",
                "--calib-tokens",
                ids.toString(),
                "--seq-len",
                "8",
                "--out",
                out.toString());
        long tokens = sentences(10, 4).stream().mapToLong(t -> ids(t).length).sum();
        expectError(
                "--calib-text " + text + " holds " + tokens / 32 + " sequences of 32 tokens (" + tokens + " tokens by "
                        + hf.resolve("tokenizer.json") + "), and --calib-sample asks for 9",
                "quantize",
                "--model",
                hf.toString(),
                "--method",
                "gptq",
                "--calib-text",
                text.toString(),
                "--seq-len",
                "32",
                "--calib-sample",
                "9",
                "--out",
                out.toString());

        // options that do not go together
        expectError(
                "--calib-text and --calib-tokens are two sources of the same sequences: give one",
                "quantize",
                "--model",
                hf.toString(),
                "--method",
                "gptq",
                "--calib-text",
                text.toString(),
                "--calib-tokens",
                ids.toString(),
                "--out",
                out.toString());
        expectError(
                "--seed applies to sequences sampled from the model; --calib-text sequences are cut from the file",
                "quantize",
                "--model",
                hf.toString(),
                "--method",
                "gptq",
                "--calib-text",
                text.toString(),
                "--seed",
                "3",
                "--out",
                out.toString());
        expectError(
                "--tokenizer " + text + " applies with --calib-text only",
                "quantize",
                "--model",
                bin,
                "--method",
                "gptq",
                "--tokenizer",
                text.toString(),
                "--out",
                out.toString());
        expectError(
                "--calib-sample, --calib-text, --calib-tokens, --tokenizer, --seq-len and --seed apply to gptq, awq"
                        + " and awq-block only, not to nf4",
                "quantize",
                "--model",
                bin,
                "--method",
                "nf4",
                "--calib-tokens",
                ids.toString(),
                "--out",
                out.toString());
        expectError(
                "--calib-tokens does not apply to --format gguf --model",
                "quantize",
                "--model",
                bin,
                "--method",
                "rtn",
                "--format",
                "gguf",
                "--gguf-type",
                "q8_0",
                "--calib-tokens",
                ids.toString(),
                "--out",
                dir.resolve("m.gguf").toString());
        expectError(
                "--calib-text and --eval-text are the same file (" + text + "): the evaluation sequences must be held"
                        + " out",
                "eval",
                "--model",
                hf.toString(),
                "--calib-text",
                text.toString(),
                "--eval-text",
                text.toString(),
                "--out",
                dir.toString());
        expectError(
                "--calib-text, --calib-tokens, --eval-text, --eval-tokens and --tokenizer apply with --model",
                "eval",
                "--calib-tokens",
                ids.toString(),
                "--out",
                dir.toString());
        expectError(
                "--prompt and --tokens are two prompts: give one",
                "generate",
                "--model",
                hf.toString(),
                "--prompt",
                "the cat",
                "--tokens",
                "1 3");
        Path broken = dir.resolve("broken.json");
        Files.writeString(broken, "{\"model\": {\"type\": \"WordLevel\", \"vocab\": {\"a\": 0, \"b\": 0}}}");
        expectError(
                broken + ": model.vocab entry 'b' has id 0, which 'a' has too",
                "generate",
                "--model",
                hf.toString(),
                "--prompt",
                "the cat",
                "--tokenizer",
                broken.toString());
        assertThat(out).doesNotExist();
    }
}
