"""Models by name: the catalogue of known-good models, pulling them from a Hugging Face hub into
``DATA_DIR/models`` (``vodscribe models pull``), the lock file of their hashes, and turning a
setting (a name, ``bundled`` or a path) into verified files for the engines.

The service never downloads on its own: only ``vodscribe models pull`` does (or the explicit
``VODSCRIBE_MODELS_PULL_ON_START`` opt-in).
"""
