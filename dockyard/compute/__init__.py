"""Compute (Nova v2.1): flavors, servers and their state machine, key pairs, quotas,
server groups, the scheduler, the Docker driver glue and the reconciler."""
