"""Fix and replay (issue #14): patch stored payloads, preview them, replay them."""
