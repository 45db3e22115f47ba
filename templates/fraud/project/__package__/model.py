"""Fraud model: encoded table rows in, fraud probability (float32) out.

    numeric (float32, imputed) -> standardised (training mean and variance)
    cat_<column> (int32 id)    -> Embedding per column (0 missing, 1 unknown)
    -> MLP (Dense, batch norm, ReLU, dropout)          model.kind = "mlp"
       or feature tokens + Transformer blocks         model.kind = "ft_transformer"
    -> Dense(1) -> sigmoid (float32 under mixed precision)

Only built-in Keras layers and losses: checkpoints reload with
``keras.models.load_model`` alone, on TensorFlow and on JAX, and export as they are.
Imbalance is handled in the loss: fraud rows weigh ``meta['pos_weight']``.
"""

from __future__ import annotations

import math
from typing import Any

import keras

from .config import Config, choice, get
from .data import feature_names

KINDS = ("mlp", "ft_transformer")


def build_model(config: Config, meta: dict[str, Any]) -> keras.Model:
    """The classifier for the features described in ``meta['features']``."""
    features = meta["features"]
    kind = choice(config, "model.kind", KINDS)
    dropout = float(get(config, "model.dropout"))
    inputs: dict[str, keras.KerasTensor] = {}
    numeric = None
    width = len(feature_names(features))
    if width:
        inputs["numeric"] = keras.Input((width,), dtype="float32", name="numeric")
        numeric = standardise(features["normalization"])(inputs["numeric"])
    categorical = []
    for spec in features["categorical"]:
        inputs[spec["input"]] = keras.Input((1,), dtype="int32", name=spec["input"])
        categorical.append((spec, inputs[spec["input"]]))

    if kind == "mlp":
        x = mlp(numeric, categorical, config, dropout)
    else:
        x = ft_transformer(numeric, categorical, width, config, dropout)
    rate = _effective_positive_rate(config, meta)
    logit = keras.layers.Dense(1, name="logit", bias_initializer=keras.initializers.Constant(
        math.log(rate / (1 - rate))))(x)
    outputs = keras.layers.Activation("sigmoid", dtype="float32", name="fraud_probability")(logit)
    return keras.Model(inputs, outputs, name=f"fraud_{kind}")


def standardise(stats: dict[str, list[float]]) -> keras.layers.Layer:
    """(x - mean) / std as x * scale + offset, the statistics held as plain numbers.

    Not ``keras.layers.Normalization(mean=..., variance=...)``: that keeps them as
    tensors made outside the traced function, which the ONNX converter turns into
    extra graph inputs nobody can feed.
    """
    scale = [1.0 / max(math.sqrt(max(v, 0.0)), 1e-7) for v in stats["variance"]]
    offset = [-m * s for m, s in zip(stats["mean"], scale, strict=True)]
    return keras.layers.Rescaling(scale=scale, offset=offset, name="standardise")


def epoch_metrics(meta: dict[str, Any]) -> dict[str, Any]:
    """val_pr_auc (the monitor) and val_roc_auc after each epoch: exact, the report's own.

    Not keras.metrics.AUC: its 500-threshold estimate of PR-AUC differs from the
    average precision of the final report (0.044 against 0.060 on the sample data).
    """
    from . import report

    def pr_auc(labels: Any, scores: Any) -> float:
        return report.average_precision(labels.reshape(-1).astype("int64"), scores.reshape(-1))

    def roc_auc(labels: Any, scores: Any) -> float:  # a Keras log needs a number: 0 if undefined
        return report.roc_auc(labels.reshape(-1).astype("int64"), scores.reshape(-1)) or 0.0

    return {"pr_auc": pr_auc, "roc_auc": roc_auc}


def compile_args(config: Config, meta: dict[str, Any]) -> dict[str, Any]:
    """Weighted (or focal) binary cross-entropy. PR-AUC and ROC-AUC come from epoch_metrics."""
    method = choice(config, "imbalance.method", ("class_weight", "focal", "undersample", "none"))
    weight = float(meta["pos_weight"])
    if method in ("class_weight", "focal"):
        # alpha / (1 - alpha) = weight: the loss of a fraud row counts `weight` times.
        # With gamma 0 this is exactly class-weighted cross-entropy, up to a constant factor.
        # A label smoothing of 1e-6 (no visible effect on the loss) keeps (1 - p_t) above
        # zero when the sigmoid saturates: the gradient of (1 - p_t) ** 0 is NaN at zero.
        loss: keras.losses.Loss = keras.losses.BinaryFocalCrossentropy(
            apply_class_balancing=True, alpha=weight / (1.0 + weight), label_smoothing=1e-6,
            gamma=float(get(config, "imbalance.focal_gamma")) if method == "focal" else 0.0)
    else:
        loss = keras.losses.BinaryCrossentropy()
    return {
        "loss": loss,
        "metrics": [],
    }


def mlp(numeric: Any, categorical: list[tuple[dict[str, Any], Any]], config: Config,
        dropout: float) -> Any:
    """Concatenated features through Dense -> BatchNorm -> ReLU -> Dropout blocks."""
    largest = int(get(config, "model.embedding_dim"))
    parts = [] if numeric is None else [numeric]
    for spec, ids in categorical:
        size = len(spec["vocabulary"]) + 2
        dim = max(2, min(largest, round(1.6 * size**0.56)))  # fastai's rule of thumb
        vector = keras.layers.Embedding(size, dim, name=f"embed_{spec['input']}")(ids)
        parts.append(keras.layers.Flatten(name=f"flat_{spec['input']}")(vector))
    x = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="features")(parts)
    for index, units in enumerate(get(config, "model.hidden")):
        x = keras.layers.Dense(int(units), use_bias=False, name=f"dense{index}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{index}")(x)
        x = keras.layers.ReLU(name=f"relu{index}")(x)
        x = keras.layers.Dropout(dropout, name=f"dropout{index}")(x)
    return x


def ft_transformer(numeric: Any, categorical: list[tuple[dict[str, Any], Any]], width: int,
                   config: Config, dropout: float) -> Any:
    """FT-Transformer style: one token per feature, Transformer blocks, mean-pooled tokens."""
    dim = int(get(config, "model.embedding_dim"))
    heads = int(get(config, "model.ft_heads"))
    tokens = []
    if numeric is not None:
        # Feature j's token is x_j * W_j + b_j: a separate linear map per feature.
        column = keras.layers.Reshape((width, 1), name="numeric_columns")(numeric)
        tokens.append(keras.layers.EinsumDense("abc,bcd->abd", output_shape=(width, dim),
                                               bias_axes="bd", name="numeric_tokens")(column))
    for spec, ids in categorical:
        tokens.append(keras.layers.Embedding(len(spec["vocabulary"]) + 2, dim,
                                             name=f"token_{spec['input']}")(ids))
    x = tokens[0] if len(tokens) == 1 else keras.layers.Concatenate(axis=1, name="tokens")(tokens)
    for block in range(int(get(config, "model.ft_blocks"))):
        y = keras.layers.LayerNormalization(name=f"block{block}_norm1")(x)
        y = keras.layers.MultiHeadAttention(heads, max(1, dim // heads), dropout=dropout,
                                            name=f"block{block}_attention")(y, y)
        x = keras.layers.Add(name=f"block{block}_add1")([x, y])
        y = keras.layers.LayerNormalization(name=f"block{block}_norm2")(x)
        y = keras.layers.Dense(2 * dim, activation="gelu", name=f"block{block}_ffn1")(y)
        y = keras.layers.Dropout(dropout, name=f"block{block}_dropout")(y)
        y = keras.layers.Dense(dim, name=f"block{block}_ffn2")(y)
        x = keras.layers.Add(name=f"block{block}_add2")([x, y])
    x = keras.layers.LayerNormalization(name="final_norm")(x)
    return keras.layers.GlobalAveragePooling1D(name="token_pool")(x)


def _effective_positive_rate(config: Config, meta: dict[str, Any]) -> float:
    """The positive rate the loss sees, to start the output bias there."""
    rate = float(meta["fit_positive_rate"])
    if choice(config, "imbalance.method", ("class_weight", "focal", "undersample", "none")) in (
            "class_weight", "focal"):
        weight = float(meta["pos_weight"])
        rate = rate * weight / (rate * weight + 1 - rate)
    return min(max(rate, 1e-4), 1 - 1e-4)
