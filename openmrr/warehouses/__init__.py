"""Server warehouses: copy the tables a dbt build reads out of DuckDB and build the models there."""
