"""FL-API: orchestrates federated rounds, aggregates updates, serves model versions."""
