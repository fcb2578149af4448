"""Registration: validates partners' requests, keeps participations, and publishes what it decided."""
