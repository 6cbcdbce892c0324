"""recpipe orchestration: config, node ids, the DAG, planning and running a night, Kubeflow, data tools,
records and the CLI. Below it, components/ holds what TFX runs."""

import components  # noqa: F401  (sets TF_USE_LEGACY_KERAS before anything loads TensorFlow)
