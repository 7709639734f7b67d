"""HTTP interfaces: the REST API and (later) TAXII 2.1, both behind the one policy."""
