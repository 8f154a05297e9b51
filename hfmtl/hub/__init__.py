"""The Hugging Face Hub: publishing a model folder with its model card, and downloading one."""
