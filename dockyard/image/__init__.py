"""Image service (Glance v2): image records, blob store, docker save archives."""
