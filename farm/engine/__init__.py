"""The render engine: a driver-side scheduler and resident Ray workers, one per GPU (or CPU) slot.

``scheduler`` is the driver loop that turns queued shots into database transitions; ``policy`` decides
what a failed attempt means (pure, tested without Ray); ``faults`` maps foreign errors to farm's;
``inputs`` stages a shot's portrait, audio and continuation frames; ``pool`` creates and tracks the
``worker`` actors (one loads a model once and renders many shots); ``artifacts`` is the content-addressed
store; ``messages`` the data that crosses between them; ``cluster`` joins Ray. The job-level use cases
(the driver lease, the edit, retakes) live above, in ``farm.jobs``.
"""
