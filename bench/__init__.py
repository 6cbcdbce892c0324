"""`make bench` and `recpipe bench-quality`: scenarios, protocols and metrics that measure the pipeline as a
user runs it. Lives in the source checkout only; not installed with the package."""

import components  # noqa: F401  (sets TF_USE_LEGACY_KERAS before anything loads TensorFlow)
