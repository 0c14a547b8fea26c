"""convladder: a ladder of small CNNs trained on CIFAR-10, reproduced from a student study."""

__version__ = "0.1.0"
