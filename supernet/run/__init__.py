"""What train, search and export share about a run: its directory (config, checkpoints, versions,
atomic writes), the device it runs on, and the evaluation of a BN-recalibrated child on its data."""
