"""OpenBSS: an open-source, cloud-native BSS/OSS for telecom operators."""

__version__ = "0.1.0"
