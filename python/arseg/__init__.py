"""PyTorch side of ar-seg-native: reference formulations, conversion and training."""
