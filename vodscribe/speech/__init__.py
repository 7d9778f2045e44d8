"""Speech: recognition over a whole file, subtitle cues, subtitle formats, subtitle translation."""
