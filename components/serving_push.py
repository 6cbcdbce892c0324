"""The Pusher: a model reaches TF Serving only if the Evaluator, the feed-quality gate and the serving check
all blessed it.

TFX's own Pusher copies files straight into the numbered version folder, which TF Serving may load while
it is half-written; this one stages, renames, prunes old versions and rewrites models.config
(components/serving_layout.py). It writes the same PushedModel properties as TFX's Pusher.
"""

# No `from __future__ import annotations`: TFX parses this component's annotations at runtime.

from tfx import v1 as tfx
from tfx.utils import path_utils

from components.serving_layout import push_model


@tfx.dsl.components.component
def ServingPusher(
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    model_blessing: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    feed_blessing: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    infra_blessing: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.InfraBlessing],
    pushed_model: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.PushedModel],
    serving_root: tfx.dsl.components.Parameter[str],
    model_name: tfx.dsl.components.Parameter[str],
    keep_versions: tfx.dsl.components.Parameter[int],
    base_path_in_server: tfx.dsl.components.Parameter[str] = "",
) -> None:
    pushed, destination, version = False, "", 0
    if model_blessing.get_int_custom_property("blessed") != 1:
        reason = "not pushed: the Evaluator did not bless the model"
    elif feed_blessing.get_int_custom_property("blessed") != 1:
        reason = f"not pushed: the feed-quality gate refused it: {feed_blessing.get_string_custom_property('reason')}"
    elif infra_blessing.get_int_custom_property("blessed") != 1:
        reason = (
            f"not pushed: the serving check failed: {infra_blessing.get_string_custom_property('reason')}"
        )
    else:
        result = push_model(
            path_utils.serving_model_dir(model.uri),
            serving_root,
            model_name,
            keep_versions,
            source={"model_uri": model.uri},
            base_path_prefix=base_path_in_server or None,
        )
        pushed, reason = result.pushed, result.reason
        destination, version = result.path or "", result.version or 0
    pushed_model.set_int_custom_property("pushed", int(pushed))
    pushed_model.set_string_custom_property("pushed_destination", destination if pushed else "")
    pushed_model.set_int_custom_property("pushed_version", version if pushed else 0)
    pushed_model.set_string_custom_property("reason", reason[:2000])
