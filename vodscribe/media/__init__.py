"""Media work: safe download, probing and decoding, ffmpeg, renditions, HLS packaging."""
