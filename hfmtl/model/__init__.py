"""The model: one shared encoder with a head per task (`modeling`, `heads`, `model_config`, `encoder_code`, which
import only torch and transformers and so publish as remote code), finding the encoder, and the saved model folder.
"""
