"""tansiq: a federated STIX 2.1 / TAXII 2.1 coordination platform for partner agencies."""

__version__ = "0.1.0"
