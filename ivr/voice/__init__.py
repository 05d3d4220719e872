"""The robot's voice: a TTS engine behind an interface (tts), conversion to Asterisk's 8 kHz
WAV (audio), a content-addressed cache of rendered phrases (cache), voice packs of recorded
fragments for amounts and dates (pack) composed with the synthetic voice into phrases (compose),
and the per-call preparation of every phrase before dialing (prepare)."""
