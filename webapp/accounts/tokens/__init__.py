"""Personal tokens: secrets people give scripts instead of their password or session."""
