package dev.quant4j.testing;

import java.io.ByteArrayOutputStream;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A model folder as one fuzz input, so that a target fuzzes every file of it at once: the files in a fixed order of
 * names, each as a 2-byte big-endian length and that many bytes. A file of length 0 is absent; a length past the end of
 * the input takes what is left; the files after the end of the input are absent. Seeds are folders {@link #pack}ed.
 */
public final class FuzzFolder {

    /** The files of a GPTQ checkpoint folder, in the order of the input's parts ({@code io/GptqCheckpointFuzzTest}). */
    public static final List<String> GPTQ_CHECKPOINT = List.of(
            "quantize_config.json",
            "config.json",
            "model.safetensors",
            "gptq_model-4bit-128g.safetensors",
            "model.safetensors.index.json");

    /** The files of a Hugging Face model folder, in the order of the input's parts ({@code model/HuggingFaceLlamaFuzzTest}). */
    public static final List<String> HUGGING_FACE_LLAMA = List.of(
            "config.json",
            "model.safetensors.index.json",
            "model.safetensors",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors");

    private FuzzFolder() {}

    /** The files of {@code input}, by name: the {@code i}-th part is file {@code names.get(i)}. */
    public static Map<String, byte[]> unpack(byte[] input, List<String> names) {
        Map<String, byte[]> files = new LinkedHashMap<>();
        int at = 0;
        for (String name : names) {
            if (at + 2 > input.length) {
                break;
            }
            int length = ((input[at] & 0xFF) << 8) | (input[at + 1] & 0xFF);
            at += 2;
            int end = Math.min(input.length, at + length);
            if (end > at) {
                files.put(name, Arrays.copyOfRange(input, at, end));
            }
            at = end;
        }
        return files;
    }

    /** The input that {@link #unpack}s to {@code files} (each at most 65535 bytes). */
    public static byte[] pack(Map<String, byte[]> files, List<String> names) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (String name : names) {
            byte[] b = files.getOrDefault(name, new byte[0]);
            if (b.length > 0xFFFF) {
                throw new IllegalArgumentException(name + " has " + b.length + " bytes, more than a part holds");
            }
            out.write(b.length >>> 8);
            out.write(b.length & 0xFF);
            out.writeBytes(b);
        }
        return out.toByteArray();
    }
}
