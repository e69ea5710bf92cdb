"""The model layer: the AvatarModel contract, model manifests, the adapter registry, camera moves and models."""
