"""Model builders shared by training, serving and benchmarking."""
