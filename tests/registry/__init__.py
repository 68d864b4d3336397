"""Tests of rpc.registry: the API over every backend, and resilience with real processes."""
