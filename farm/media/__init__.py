"""Media I/O: decoding dialogue audio, reading portraits, encoding and probing video with ffmpeg."""
