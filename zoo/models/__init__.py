"""The builders. Importing this package registers every model."""

from zoo.models import backbones, cnn, rnn  # noqa: F401
