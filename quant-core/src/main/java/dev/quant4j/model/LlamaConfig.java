package dev.quant4j.model;

import java.util.Objects;

/**
 * The hyperparameters of a Llama-family decoder (Llama, Mistral, Qwen2 and llama2.c's models share this shape).
 *
 * @param dim the residual stream's width ({@code hidden_size})
 * @param hiddenDim the MLP's inner width ({@code intermediate_size})
 * @param layers decoder blocks ({@code num_hidden_layers})
 * @param heads query heads ({@code num_attention_heads})
 * @param kvHeads key and value heads ({@code num_key_value_heads}); fewer than {@code heads} is grouped-query
 *     attention, each key/value head serving {@code heads / kvHeads} query heads
 * @param headDim the width of one head ({@code head_dim}; {@code dim / heads} unless the checkpoint says otherwise)
 * @param vocabSize rows of the embedding table and of the output head
 * @param maxSeqLen the longest sequence the model was trained for ({@code max_position_embeddings})
 * @param ropeTheta the rotary base ({@code rope_theta}; 10000 for LLaMA and llama2.c)
 * @param normEps RMSNorm's epsilon ({@code rms_norm_eps}; llama2.c uses 1e-5)
 * @param rope which dimensions rotary embedding pairs
 * @param tiedEmbeddings whether the output head is the embedding table ({@code tie_word_embeddings})
 */
public record LlamaConfig(
        int dim,
        int hiddenDim,
        int layers,
        int heads,
        int kvHeads,
        int headDim,
        int vocabSize,
        int maxSeqLen,
        double ropeTheta,
        double normEps,
        RopeLayout rope,
        boolean tiedEmbeddings) {

    /** Checks every field; the message names the field and its value. */
    public LlamaConfig {
        positive("dim", dim);
        positive("hidden_dim", hiddenDim);
        positive("layers", layers);
        positive("heads", heads);
        positive("kv_heads", kvHeads);
        positive("head_dim", headDim);
        positive("vocab_size", vocabSize);
        positive("max_seq_len", maxSeqLen);
        Objects.requireNonNull(rope, "rope");
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException(
                    "heads " + heads + " is not a multiple of kv_heads " + kvHeads + " (grouped-query attention)");
        }
        if (headDim % 2 != 0) {
            throw new IllegalArgumentException("head_dim " + headDim + " is odd: rotary embedding rotates pairs");
        }
        if ((long) heads * headDim > Integer.MAX_VALUE / 2) {
            throw new IllegalArgumentException("heads " + heads + " x head_dim " + headDim + " is too large");
        }
        if (!(ropeTheta > 1) || Double.isInfinite(ropeTheta)) {
            throw new IllegalArgumentException("rope_theta " + ropeTheta + " must be a finite number above 1");
        }
        if (!(normEps > 0) || normEps >= 1) {
            throw new IllegalArgumentException("rms_norm_eps " + normEps + " must be in (0, 1)");
        }
    }

    private static void positive(String field, int value) {
        if (value <= 0) {
            throw new IllegalArgumentException(field + " is " + value + ", must be positive");
        }
    }

    /** The width of all query heads together, {@code heads * headDim} (the input width of {@code o_proj}). */
    public int qDim() {
        return heads * headDim;
    }

    /** The width of all key (or value) heads together, {@code kvHeads * headDim}. */
    public int kvDim() {
        return kvHeads * headDim;
    }
}
