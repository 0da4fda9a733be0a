"""Recurrent sequence classifiers: SimpleRNN, LSTM and GRU on sequences of any length."""

from __future__ import annotations

from zoo import _checks
from zoo._registry import register_model

# keras.layers class of each variant (Keras is imported by the builders, not at registration).
_CELLS = {"simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}
_SEQUENCE_DEFAULTS = dict(task="sequence", input_shape=(None, 10), num_classes=1)
# The options every recurrent variant takes:
#   units: width of each recurrent layer; num_layers: stacked layers (all but the last return
#   sequences); bidirectional: wrap each in Bidirectional; dropout: input dropout of the recurrent
#   layers; masking: skip padded steps (steps whose features all equal mask_value);
#   classifier_activation: "auto", "softmax", "sigmoid", or "linear"/None for logits.
RNN_OPTIONS = dict(
    units=64,
    num_layers=1,
    bidirectional=False,
    dropout=0.0,
    masking=False,
    mask_value=0.0,
    classifier_activation="auto",
)


def _create_rnn(
    variant: str,
    input_shape,
    num_classes: int,
    *,
    units: int,
    num_layers: int,
    bidirectional: bool,
    dropout: float,
    masking: bool,
    mask_value: float,
    classifier_activation: str | None,
):
    if not all(_checks.is_int(v) and v >= 1 for v in (units, num_layers)):
        raise ValueError(
            f"{variant}: units and num_layers should be >= 1 (ints). "
            f"Received: units={units!r}, num_layers={num_layers!r}"
        )
    bidirectional = _checks.flag(variant, "bidirectional", bidirectional)
    dropout = _checks.fraction(variant, "dropout", dropout)
    masking = _checks.flag(variant, "masking", masking)
    mask_value = _checks.finite_number(variant, "mask_value", mask_value)
    import keras
    from keras import layers

    from zoo._layers import classifier

    recurrent = getattr(layers, _CELLS[variant])
    inputs = keras.Input(shape=input_shape, name="sequence")
    x = layers.Masking(mask_value=mask_value, name="masking")(inputs) if masking else inputs
    for index in range(int(num_layers)):
        layer = recurrent(
            int(units),
            dropout=dropout,
            return_sequences=index < num_layers - 1,
            name=f"{variant}_{index + 1}",
        )
        if bidirectional:
            layer = layers.Bidirectional(layer, name=f"bidirectional_{index + 1}")
        x = layer(x)
    outputs = classifier(x, num_classes, classifier_activation)
    return keras.Model(inputs, outputs, name=variant)


@register_model(**_SEQUENCE_DEFAULTS, options=RNN_OPTIONS)
def simple_rnn(input_shape, num_classes, **options):
    """SimpleRNN(64) -> Dense(1, sigmoid) on (time, 10) sequences: 4,865 parameters.

    Example:
        >>> model = zoo.create_model("simple_rnn", masking=True, num_layers=2)
    """
    return _create_rnn("simple_rnn", input_shape, num_classes, **options)


@register_model(**_SEQUENCE_DEFAULTS, options=RNN_OPTIONS)
def lstm(input_shape, num_classes, **options):
    """LSTM(64) -> Dense(1, sigmoid) on (time, 10) sequences: 19,265 parameters.

    Example:
        >>> model = zoo.create_model("lstm", input_shape=(None, 10), num_classes=1)
    """
    return _create_rnn("lstm", input_shape, num_classes, **options)


@register_model(**_SEQUENCE_DEFAULTS, options=RNN_OPTIONS)
def gru(input_shape, num_classes, **options):
    """GRU(64) -> Dense(1, sigmoid) on (time, 10) sequences, the lighter gated RNN: 14,657 parameters.

    Example:
        >>> model = zoo.create_model("gru", bidirectional=True)
    """
    return _create_rnn("gru", input_shape, num_classes, **options)
