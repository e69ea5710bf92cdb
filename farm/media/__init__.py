"""Media I/O: decoding dialogue audio, reading portraits, encoding and probing video.

``ffmpeg`` builds and runs every ffmpeg process (ffmpeg-python builds the command lines); ``video`` and
``audio`` probe and decode in-process with PyAV where no process is needed.
"""
