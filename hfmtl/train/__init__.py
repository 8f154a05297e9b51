"""Training: the loop, its steps and loss weighting, optimizer, precision, checkpoints, model selection and the
run folder with its records."""
