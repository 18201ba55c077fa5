"""Deliveries of the finished datasets to places outside the warehouse (spec/destinations.md)."""
