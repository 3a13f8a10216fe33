"""Rules-as-code service for Shanghai's IP and tech-transfer subsidy programs."""
