"""The render engine: a driver-side scheduler and resident Ray workers, one per GPU (or CPU) slot.

``artifacts`` is the content-addressed store, ``worker`` the Ray actor that loads a model once and renders
many shots, ``pool`` creates and tracks those actors, ``faults`` decides what a failure means, and
``scheduler`` is the driver loop that turns queued shots into DB transitions.
"""
