package dev.quant4j.model;

/**
 * Which pairs of a head's query and key dimensions rotary position embedding rotates together. The two layouts are
 * the same rotation applied to differently ordered rows of {@code W_q} and {@code W_k}: Hugging Face's conversion of
 * Meta's checkpoints permutes those rows so that the second layout computes what the first one did.
 */
public enum RopeLayout {
    /**
     * Dimensions {@code (2j, 2j + 1)} of each head, rotated by frequency {@code j}: Meta's LLaMA code and llama2.c's
     * {@code run.c} (the complex-number form), and GGUF's {@code llama} architecture.
     */
    INTERLEAVED,
    /**
     * Dimensions {@code (j, j + d/2)} of each head of size {@code d}, rotated by frequency {@code j}: Hugging Face
     * transformers' {@code rotate_half} (Llama, Mistral, Qwen2 checkpoints on the Hub).
     */
    HALF_SPLIT
}
