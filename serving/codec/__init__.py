"""The REST wire format: JSON read and write, request decoding, response encoding, classify/regress examples."""
