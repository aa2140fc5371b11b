"""Networking (Neutron v2.0 subset): networks, subnets, ports, security groups on Docker bridges."""
