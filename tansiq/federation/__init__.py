"""Federation between partner nodes: signing a node's own objects, checking what peers send."""
