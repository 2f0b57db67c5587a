"""Wire formats only (Airbyte messages, Singer messages, catalogs): parse and serialise, nothing else."""
