"""Unit tests of the storage layer's pure parts."""
