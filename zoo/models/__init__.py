"""The builders. Importing this package registers every model, without importing Keras.

Models saved before zoo built preprocessing from stock layers hold zoo's `ImagePreprocessing`;
it is registered with Keras here when Keras is already loaded (importing it otherwise would cost
`zoo list` the Keras import), and always by `zoo.load_model` and the builders.
"""

import sys

from zoo.models import backbones, cnn, rnn, sequence_cnn  # noqa: F401

if "keras" in sys.modules:
    import zoo._layers  # noqa: F401
