"""TLS material Inbound makes for itself: the development CA and certificates."""
