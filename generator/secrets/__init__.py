"""Secrets: the credential scanner, Secret producers (SealedSecret, SOPS), ExternalSecret declarations."""
