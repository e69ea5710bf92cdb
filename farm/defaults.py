"""Every policy number farm ships with, defined once: the flags, the library and the docs read them here.

Flamenco keeps its ``config/defaults.go`` for the same reason: a default repeated in three places is
three defaults the day someone changes one. Values a studio configures per run still arrive through
Settings, command-line flags or the shot list; these are what they fall back to.
"""

from __future__ import annotations

# --- the edit's sound ------------------------------------------------------------------------------------
LOUDNESS_LUFS = -16.0
"""Integrated loudness target of an edit's dialogue (BS.1770), the level streaming platforms normalise to."""
TRUE_PEAK_DB = -1.0
"""True-peak ceiling of an edit's dialogue (dBTP), headroom for lossy encoding."""

# --- rendering -------------------------------------------------------------------------------------------
MODEL_SAMPLE_RATE = 16_000
"""The rate every avatar model hears speech at (wav2vec2's, and previz's envelope's)."""
EDIT_AUDIO_RATE = 48_000
"""The rate of an edit's (and a shot video's) sound: film and broadcast's."""
MAX_SHOT_SECONDS = 600.0
"""The longest shot a shot list may ask for before validation refuses it (a typo in a timecode, usually)."""
CAMERA_INTENSITY = 0.5
"""How strong a camera move is when the shot list names the move but no intensity."""

# --- faults and the driver -----------------------------------------------------------------------------
MAX_ATTEMPTS = 3
"""Errors a shot may have before it fails (lost workers and out-of-memory retries don't count)."""
MAX_CRASHES = 5
"""Lost workers or nodes a shot may live through before it fails."""
BLOCKLIST_AFTER = 3
"""Consecutive failed shots on one node before the node leaves the rotation for the job."""
HEARTBEAT_SECONDS = 2.0
"""How often a driver renews its lease on a job."""
STALE_AFTER_HEARTBEATS = 3
"""Missed heartbeats after which a driver counts as dead and another may take its job over."""
DATABASE_RETRY_SECONDS = 180.0
"""How long a driver or the manager rides out a database outage (lost connections, a failover, a locked
SQLite file), retrying each transaction with backoff, before it stops with a resumable job."""
RETRY_BASE_SECONDS = 1.0
"""The wait before a failed shot's first retry; it doubles with each further failure (with jitter)."""
RETRY_CAP_SECONDS = 120.0
"""The longest wait between two attempts of a shot."""
IDLE_RELEASE_SECONDS = 30.0
"""How long a resident worker waits with nothing to render before the manager releases its GPU."""
STUCK_SECONDS = 300.0
"""A render that reports no progress for this long (plus ``STUCK_SECONDS_PER_FRAME`` per frame) is stuck."""
STUCK_SECONDS_PER_FRAME = 2.0
DEBRIS_MIN_AGE_SECONDS = 600.0
"""A temporary file or unrecorded edit folder younger than this is never swept as debris, whatever the
database says (a clock a little off between nodes, a render dispatched as the sweep reads)."""
GC_OLDER_THAN_SECONDS = 30 * 86_400.0
"""``farm gc`` removes unreferenced artifacts recorded longer ago than this (30 days) unless told otherwise."""
MANAGER_POLL_SECONDS = 0.5
"""How often ``farm serve`` looks for jobs submitted from another process (one submitted through its own
API is picked up at once)."""
API_LISTEN = "127.0.0.1:8765"
"""Where ``farm serve`` serves the HTTP API unless told otherwise: loopback only."""

# --- continuity ------------------------------------------------------------------------------------------
MAX_RETAKES = 2
"""Automatic continuity retakes per shot before its failing check is reported instead."""
