"""The adoption guide and its example charm, run as an adopter would."""
